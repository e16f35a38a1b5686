"""Run a command or a pipeline as subprocesses and measure it.

Why not ``subprocess.run`` + ``time``: we need the peak RSS of *each* process
of a pipeline (``pg_dump | zstd | age``), which only ``wait4`` gives for a
direct child, and the peak RSS of seawall's own Python process separately
from the ``pg_dump`` it spawns. ``wait4`` reports for a child the maximum of
its own peak and that of every descendant it reaped, so for seawall we also
sample ``VmHWM`` (the kernel's high-water mark, monotonic) of every process in
the tree from ``/proc`` while it runs: the last sample before exit is the
process's own peak, give or take the growth in the final sampling interval.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

KIB_PER_MIB = 1024.0


@dataclass
class StageResult:
    """One process of a pipeline, as ``wait4`` saw it."""

    argv0: str
    returncode: int
    # Own peak: sampled VmHWM when the sampler saw the process, else wait4's
    # ru_maxrss -- which has a floor of the harness's own RSS (it counts the
    # forked child before exec) and includes reaped descendants.
    maxrss_mb: float
    wait4_maxrss_mb: float = 0.0
    # True when the process ended before the sampler saw it and wait4's value
    # is no more than the fork floor: the real peak is at most this
    upper_bound: bool = False
    #: CPU seconds (user + system) of the process and its reaped descendants
    cpu_s: float = 0.0


@dataclass
class RunResult:
    """One timed run of a command or pipeline."""

    wall_s: float
    stages: list[StageResult]
    # sampled VmHWM per process (pid -> (comm, MiB)) over the whole tree
    tree_peaks: dict[int, tuple[str, float]] = field(default_factory=dict)
    stderr_tail: str = ""
    timed_out: bool = False

    @property
    def returncode(self) -> int:
        """First non-zero exit status of any stage (pipefail semantics)."""
        for stage in self.stages:
            if stage.returncode != 0:
                return stage.returncode
        return 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def max_rss_mb(self) -> float:
        return max((s.maxrss_mb for s in self.stages), default=0.0)

    @property
    def cpu_s(self) -> float:
        """CPU seconds (user + system) of every stage."""
        return sum(s.cpu_s for s in self.stages)

    @property
    def sum_rss_mb(self) -> float:
        return sum(s.maxrss_mb for s in self.stages)

    def root_peak_mb(self) -> float:
        """Peak RSS of the first stage's own process (sampled, else wait4)."""
        if not self.stages:
            return 0.0
        sampled = [mb for pid, (_, mb) in self.tree_peaks.items() if pid == self._root_pid]
        if not sampled:
            return self.stages[0].maxrss_mb
        root = self.stages[0]
        if not self.child_peaks() and root.wait4_maxrss_mb > self._floor_mb + 1.0:
            return max(sampled[0], root.wait4_maxrss_mb)  # no descendants: exact
        return sampled[0]

    def child_peaks(self) -> dict[str, float]:
        """Peak RSS by command name of every process other than the root."""
        out: dict[str, float] = {}
        for pid, (comm, mb) in self.tree_peaks.items():
            if pid == self._root_pid:
                continue
            out[comm] = max(out.get(comm, 0.0), mb)
        return out

    _root_pid: int = 0
    _floor_mb: float = 0.0

    def error(self) -> str:
        """One line describing a failure, for the notes column."""
        if self.timed_out:
            return "timed out"
        detail = last_line(self.stderr_tail)
        return f"exit {self.returncode}: {detail}".strip().rstrip(":")


_BOX = "│╭╮╰╯─┃━┏┓┗┛ \t"


def last_line(text: str, width: int = 160) -> str:
    """The last line that says something (rich error boxes are stripped)."""
    for line in reversed(text.splitlines()):
        core = line.strip(_BOX)
        if any(ch.isalnum() for ch in core):
            return core[:width]
    return ""


def _self_rss_mb() -> float:
    """Our own peak RSS: a forked child's ru_maxrss starts at this.

    fork copies the parent's mm including its RSS high-water mark, so the
    floor is the harness's VmHWM, not its current RSS.
    """
    got = _hwm(os.getpid())
    return got[1] if got else 0.0


def _ppid_map() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        # comm may contain spaces/parens: split after the last ')'
        rest = data[data.rfind(b")") + 2 :].split()
        if len(rest) > 1:
            out[int(entry.name)] = int(rest[1])
    return out


def _hwm(pid: int) -> tuple[str, float] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    name = ""
    hwm = None
    for line in text.splitlines():
        if line.startswith("Name:"):
            name = line.split(None, 1)[1] if " " in line or "\t" in line else ""
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / KIB_PER_MIB
    if hwm is None:  # zombie or kernel thread
        return None
    return name, hwm


class _TreeSampler(threading.Thread):
    """Samples VmHWM of every descendant of the given roots until stopped."""

    def __init__(self, roots: Sequence[int], interval: float) -> None:
        super().__init__(daemon=True)
        self.roots = set(roots)
        self.interval = interval
        self.peaks: dict[int, tuple[str, float]] = {}
        self._stop_evt = threading.Event()

    def sample(self) -> None:
        ppids = _ppid_map()
        tree = set(self.roots)
        changed = True
        while changed:
            changed = False
            for pid, ppid in ppids.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        for pid in tree:
            got = _hwm(pid)
            if got is None:
                continue
            # keep the latest, not the largest: a sample taken between fork
            # and exec shows the parent's memory; VmHWM restarts at exec and
            # only grows after it, so the last sample is the final image's peak
            self.peaks[pid] = got

    def run(self) -> None:
        while not self._stop_evt.is_set():
            self.sample()
            self._stop_evt.wait(self.interval)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(timeout=5)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run(
    stages: Sequence[Sequence[str]],
    *,
    env: Mapping[str, str] | None = None,
    stdin_path: Path | None = None,
    stdout_path: Path | None = None,
    user: str | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
    sample_interval: float | None = 0.02,
) -> RunResult:
    """Run ``stages[0] | stages[1] | ...`` and measure it.

    stdout of the last stage goes to ``stdout_path`` (or /dev/null). All
    stages share one process group so a timeout or Ctrl-C kills the lot.
    """
    if not stages or isinstance(stages[0], str):
        raise TypeError("stages must be a list of argv lists: [[cmd, arg, ...], ...]")
    full_env = dict(os.environ if env is None else env)
    procs: list[subprocess.Popen[bytes]] = []
    floor_mb = _self_rss_mb()
    with tempfile.TemporaryFile() as err:
        # closed in the finally below; a with-block would not cover both
        stdin_fh = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
        stdout_fh = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
        pgid = 0
        timed_out = threading.Event()
        timer: threading.Timer | None = None
        sampler: _TreeSampler | None = None
        results: list[StageResult] = []
        start = time.perf_counter()
        try:
            prev_out: int | object = stdin_fh
            for i, argv in enumerate(stages):
                last = i == len(stages) - 1
                proc = subprocess.Popen(
                    list(argv),
                    stdin=prev_out,  # type: ignore[arg-type]
                    stdout=stdout_fh if last else subprocess.PIPE,
                    stderr=err,
                    env=full_env,
                    cwd=cwd,
                    user=user,
                    process_group=pgid,
                )
                if i == 0:
                    pgid = proc.pid
                if isinstance(prev_out, int) and prev_out > 2:
                    os.close(prev_out)
                if proc.stdout is not None:
                    prev_out = os.dup(proc.stdout.fileno())
                    proc.stdout.close()
                procs.append(proc)
            if sample_interval:
                sampler = _TreeSampler([p.pid for p in procs], sample_interval)
                sampler.start()

            def _on_timeout() -> None:
                timed_out.set()
                _kill_group(pgid)

            timer = threading.Timer(timeout, _on_timeout)
            timer.daemon = True
            timer.start()
            for proc in procs:
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                results.append(
                    StageResult(
                        argv0=Path(str(stages[len(results)][0])).name,
                        returncode=proc.returncode,
                        maxrss_mb=usage.ru_maxrss / KIB_PER_MIB,
                        cpu_s=usage.ru_utime + usage.ru_stime,
                    )
                )
            wall = time.perf_counter() - start
        except BaseException:
            if pgid:
                _kill_group(pgid)
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(proc.pid, 0)
                    proc.returncode = -9
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if sampler is not None:
                sampler.stop()
            if not isinstance(stdin_fh, int):
                stdin_fh.close()
            if not isinstance(stdout_fh, int):
                stdout_fh.close()
        err.seek(0)
        tail = err.read()[-4000:].decode("utf-8", "replace")
    peaks = sampler.peaks if sampler else {}
    for proc, stage in zip(procs, results, strict=True):
        stage.wait4_maxrss_mb = stage.maxrss_mb
        # wait4 above the fork floor is exact (the process itself, or a
        # descendant, really got that big); at or below it, only the sample
        # can tell, and a process shorter than the interval may be missed
        if stage.maxrss_mb <= floor_mb + 1.0:
            if proc.pid in peaks:
                stage.maxrss_mb = peaks[proc.pid][1]
            else:
                stage.upper_bound = True
    res = RunResult(
        wall_s=wall,
        stages=results,
        tree_peaks=peaks,
        stderr_tail=tail,
        timed_out=timed_out.is_set(),
    )
    res._root_pid = procs[0].pid
    res._floor_mb = floor_mb
    return res


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; enough for 100 scrapes."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(pct / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[k]
