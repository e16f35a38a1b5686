"""PITR restore time (issue 4): seawall pitr-restore beside pgBackRest restore.

One throwaway PostgreSQL 15 cluster whose ``archive_command`` pushes every
segment into BOTH archives (``seawall wal-push %p && pgbackrest archive-push
%p``), so the two tools restore exactly the same WAL. ``pgbench -i -s
SCALE``, a seawall base backup and a ``pgbackrest backup --type=full``, then
pgbench until ``--pitr-wal-mb`` of WAL has been written after both base
backups; ``pg_switch_wal`` and wait until both archives hold the last
segment.

Then, ``--repeat`` times, interleaved (the order alternates every round so
neither tool always runs on a warmer page cache):

- ``seawall postgres pitr-restore --data-dir D --latest --start --port P``
  (its own wait: recovery finished, promoted, accepting connections);
- ``pgbackrest restore`` (type default = replay to the end of the archive)
  + ``pg_ctl start`` + poll until ``pg_is_in_recovery()`` is false.

- ``seawall postgres pitr-restore --latest`` *without* ``--start``, then
  ``pg_ctl start``: a recovery driven only by restore_command (the wrapper
  calls ``wal-fetch``: its lean path and its read-ahead), as a standby or a
  recovery set up by hand runs; beside pgBackRest's ``archive-async=y``
  restore, its model.

The clock stops for all when the server is out of recovery and answers a
query. The split (unpack vs WAL replay vs the rest) is read from the
restored server's own log: its first line is written when the postmaster
starts (unpack done), "redo starts at" / "redo done at" bracket the replay,
"ready to accept connections" is the end of promotion. Every restored
cluster must have the source's ``pgbench_history`` row count, or the run
fails: a fast wrong restore is worth nothing.

Per-segment rows: ``pgbackrest archive-get`` vs ``seawall wal-fetch`` with
``WAL_READ_AHEAD=0`` (the lean path alone) and with its read-ahead (the
default), taking turns on the same archived segments, each into a scratch
file of its own, because restore_command runs
once per 16 MiB segment, serially with replay: its start-up cost is paid
64 times per GiB.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from bench import measure, peers
from bench.cluster import PG_USER, Cluster, chown_postgres, pg_bin
from bench.context import Context
from bench.measure import RunResult
from bench.report import Row, apply_baseline
from bench.suites.common import pgbackrest_local, rss_notes, tree_size
from seawall.ports import free_loopback_port

SUITE = "pitr"
DB = "pgbench"
SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
# PostgreSQL's default log_line_prefix is '%m [%p] ': "2026-11-24 08:20:00.123 UTC [42] "
LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\w+) \[")
PREFETCH_RE = re.compile(r"(\d+) of (\d+) planned segments served from the spool")
DEFAULT_SCALE = 50
DEFAULT_WAL_MB = 1024


def _as_postgres(argv: list[str], timeout: float = 600) -> str:
    proc = subprocess.run(
        argv,
        user=PG_USER,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{Path(argv[0]).name} {' '.join(argv[1:3])}: exit {proc.returncode}: "
            f"{measure.last_line(proc.stderr or proc.stdout)}"
        )
    return proc.stdout


def _lsn(text: object) -> int:
    hi, lo = str(text).split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class Setup:
    """The source cluster, both archives and both base backups."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.scale = int(ctx.shared.get("pitr_scale", DEFAULT_SCALE))
        self.wal_mb = int(ctx.shared.get("pitr_wal_mb", DEFAULT_WAL_MB))
        self.cluster = Cluster.create()
        ctx.defer(self.cluster.destroy)
        self.cluster.start()
        self.sw_dir = ctx.tmpdir("pitr-seawall", for_postgres=True)
        self.br_work = ctx.tmpdir("pitr-pgbackrest", for_postgres=True)
        self.br_conf = pgbackrest_local(self.br_work, self.cluster)
        # the same, with the asynchronous archive-get queue pgBackRest
        # recommends for restores (it prefetches segments into spool-path)
        self.br_conf_async = self.br_work / "pgbackrest-async.conf"
        self.br_conf_async.write_text(
            self.br_conf.read_text().replace(
                "[global]\n", "[global]\narchive-async=y\narchive-get-queue-max=128MiB\n", 1
            )
        )
        chown_postgres(self.br_conf_async)
        self.history_rows = -1
        self.wal_bytes = 0
        self.last_segment = ""

    # --- environment -------------------------------------------------------

    def seawall_env(self) -> dict[str, str]:
        env = self.ctx.seawall_env(self.sw_dir) | self.cluster.libpq_env()
        env["PGDATA"] = str(self.cluster.datadir)
        return env

    def archive_command(self) -> str:
        """Both tools, one after the other: the same segment in both archives."""
        env = self.seawall_env()
        keep = (
            "BACKUP_DIR",
            "COMPRESSION",
            "ENCRYPTION",
            "ENCRYPTION_RECIPIENTS",
            "PGDATA",
            "LOG_FORMAT",
            "PYTHONPATH",
        )
        assigns = " ".join(f"{k}={shlex.quote(env[k])}" for k in keep if k in env)
        sw = f"env {assigns} {shlex.join(self.ctx.seawall_cmd())} postgres wal-push %p"
        br = shlex.join(peers.pgbackrest(self.br_conf, "archive-push")) + " %p"
        return f"{sw} && {br}"

    # --- building ----------------------------------------------------------

    def build(self) -> None:
        ctx, cluster = self.ctx, self.cluster
        _as_postgres(peers.pgbackrest(self.br_conf, "stanza-create"), timeout=120)
        cluster.set_archive_command(self.archive_command())
        cluster.execute(f"CREATE DATABASE {DB}")
        ctx.log(f"pitr: pgbench -i -s {self.scale}")
        t = time.monotonic()
        subprocess.run(
            [pg_bin("pgbench"), "-i", "-q", "-s", str(self.scale), DB],
            env=self.seawall_env(),
            check=True,
            capture_output=True,
            timeout=3600,
        )
        ctx.log(f"pitr: pgbench -i done in {time.monotonic() - t:.0f}s")
        cluster.execute("CHECKPOINT")
        t = time.monotonic()
        subprocess.run(
            [*ctx.seawall_cmd(), "postgres", "basebackup"],
            env=self.seawall_env(),
            user=PG_USER,
            cwd="/tmp",
            check=True,
            capture_output=True,
            timeout=900,
        )
        ctx.log(f"pitr: seawall basebackup in {time.monotonic() - t:.0f}s")
        t = time.monotonic()
        _as_postgres(peers.pgbackrest(self.br_conf, "backup", "--type=full"), timeout=3600)
        ctx.log(f"pitr: pgbackrest backup in {time.monotonic() - t:.0f}s")
        self._generate_wal()

    def _generate_wal(self) -> None:
        ctx, cluster = self.ctx, self.cluster
        start = _lsn(cluster.scalar("SELECT pg_current_wal_lsn()"))
        target = self.wal_mb * 2**20
        env = self.seawall_env()
        env["PGOPTIONS"] = "-c synchronous_commit=off"
        t = time.monotonic()
        ctx.log(f"pitr: pgbench until {self.wal_mb} MiB of WAL")
        while True:
            written = _lsn(cluster.scalar("SELECT pg_current_wal_lsn()")) - start
            if written >= target:
                break
            subprocess.run(
                [pg_bin("pgbench"), "-n", "-c", "2", "-j", "2", "-T", "10", DB],
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )
            ctx.log(f"pitr: {written / 2**20:.0f} MiB of WAL, {cluster.ready_count()} .ready")
        self.wal_bytes = _lsn(cluster.scalar("SELECT pg_current_wal_lsn()")) - start
        self.history_rows = int(str(cluster.scalar("SELECT count(*) FROM pgbench_history", DB)))
        self.last_segment = str(cluster.scalar("SELECT pg_walfile_name(pg_switch_wal())"))
        self._wait_both_archived(self.last_segment)
        ctx.log(
            f"pitr: {self.wal_bytes / 2**20:.0f} MiB of WAL in {time.monotonic() - t:.0f}s, "
            f"last segment {self.last_segment} in both archives, "
            f"pgbench_history {self.history_rows} rows"
        )

    def _in_seawall(self, name: str) -> bool:
        d = self.sw_dir / "postgresql" / "wal" / "main" / name[:16]
        return d.is_dir() and any(p.startswith(name + "-") for p in os.listdir(d))

    def _in_pgbackrest(self, name: str) -> bool:
        root = self.br_work / "repo" / "archive" / "bench"
        return any(
            p.name.startswith(name + "-") for p in root.glob(f"*/{name[:16]}/*") if p.is_file()
        )

    def _wait_both_archived(self, name: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while not (self._in_seawall(name) and self._in_pgbackrest(name)):
            if time.monotonic() > deadline:
                failed = self.cluster.scalar("SELECT last_failed_wal FROM pg_stat_archiver")
                raise RuntimeError(
                    f"{name} not in both archives after {timeout:.0f}s (last failed: {failed})"
                )
            time.sleep(0.2)

    def archived_segments(self) -> list[str]:
        """Segment names in the seawall archive (they are in both)."""
        root = self.sw_dir / "postgresql" / "wal" / "main"
        names = set()
        for sub in root.iterdir():
            if sub.is_dir() and len(sub.name) == 16:
                for p in sub.iterdir():
                    name = p.name.split("-", 1)[0]
                    if SEGMENT_RE.match(name):
                        names.add(name)
        return sorted(names)


# --- one restore each ---------------------------------------------------------


class Restore:
    """Timing and log split of one restore; the data dir is removed by cleanup()."""

    def __init__(self, root: Path, tool: str) -> None:
        self.root = root
        self.data = root / "data"
        self.tool = tool
        self.port = free_loopback_port()
        self.t0 = 0.0  # wall clock (time.time) at start
        self.wall = 0.0
        self.log_file: Path | None = None
        self.res: RunResult | None = None

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    [pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                    user=PG_USER,
                    capture_output=True,
                    timeout=120,
                    cwd="/tmp",
                    check=False,
                )

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={DB}",
            autocommit=True,
            connect_timeout=5,
        )

    def history_rows(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT count(*) FROM pgbench_history").fetchone()
        assert row is not None
        return int(str(row[0]))

    def fatal(self) -> str:
        """The server's last FATAL/PANIC lines (the log goes with the cleanup)."""
        if self.log_file is None or not self.log_file.exists():
            return "no server log"
        lines = self.log_file.read_text(errors="replace").splitlines()
        bad = [ln for ln in lines if "FATAL:" in ln or "PANIC:" in ln]
        return " | ".join((bad or lines)[-2:])[:300]

    def prefetch_note(self) -> str:
        """seawall's own count of segments served by its prefetcher (from its log)."""
        if self.res is None:
            return ""
        m = PREFETCH_RE.search(self.res.stderr_tail)
        return f"prefetch {m.group(1)}/{m.group(2)} segments" if m else ""

    def split(self) -> dict[str, float]:
        """Seconds of: unpack (start -> postmaster up), replay, promote (from the log)."""
        if self.log_file is None or not self.log_file.exists():
            return {}
        marks: dict[str, float] = {}
        restored: list[float] = []
        first: float | None = None
        for line in self.log_file.read_text(errors="replace").splitlines():
            m = LOG_TS.match(line)
            if not m:
                continue
            ts = datetime.strptime(m.group(1) + " +0000", "%Y-%m-%d %H:%M:%S.%f %z").timestamp()
            if m.group(2) != "UTC":  # the bench clusters log in UTC; anything else: no split
                return {}
            if first is None:
                first = ts
            if "restored log file" in line:
                restored.append(ts)
            for key, needle in (
                ("redo_start", "redo starts at"),
                ("redo_done", "redo done at"),
                ("ready", "ready to accept connections"),
            ):
                if needle in line:
                    marks[key] = ts  # the last one wins (consistent-state "ready" comes first)
        out: dict[str, float] = {}
        if first is not None:
            out["unpack_s"] = round(first - self.t0, 2)
        if "redo_start" in marks and "redo_done" in marks:
            out["replay_s"] = round(marks["redo_done"] - marks["redo_start"], 2)
            if "ready" in marks:
                out["promote_s"] = round(marks["ready"] - marks["redo_done"], 2)
        steps = [b - a for a, b in itertools.pairwise(restored)]
        if steps:
            # time from one restored segment to the next: fetch + replay of one segment
            out["segment_step_ms"] = round(measure.median(steps) * 1000)
        return out


def _wait_out_of_recovery(r: Restore, deadline: float) -> None:
    """Poll every 50 ms until the server answers and is no longer in recovery."""
    started = time.monotonic()
    while True:
        try:
            with r.connect() as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and row[0] is False:
                    return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{r.tool}: still in recovery at the timeout; log {r.log_file}")
        # our own connection attempts log FATAL while it starts: judge by the pid file
        if time.monotonic() - started > 5 and not (r.data / "postmaster.pid").exists():
            raise RuntimeError(f"{r.tool}: the server stopped: {r.fatal()}")
        time.sleep(0.05)


def seawall_restore(ctx: Context, setup: Setup, root: Path) -> Restore:
    r = Restore(root, "seawall")
    env = setup.seawall_env()
    # the source's data dir has nothing to do with a restore
    env.pop("PGDATA", None)
    r.t0 = time.time()
    r.res = measure.run(
        [
            [
                *ctx.seawall_cmd(),
                "postgres",
                "pitr-restore",
                "--data-dir",
                str(r.data),
                "--latest",
                "--start",
                "--port",
                str(r.port),
            ]
        ],
        env=env,
        timeout=ctx.opts.timeout_s * 4,
    )
    r.log_file = root / ".data.seawall-recovery" / "server.log"
    if not r.res.ok:
        raise RuntimeError(f"seawall pitr-restore: {r.res.error()}")
    # same criterion as for pgBackRest (seawall's own wait should already imply it)
    _wait_out_of_recovery(r, time.monotonic() + 120)
    r.wall = time.time() - r.t0
    return r


def seawall_rc_restore(ctx: Context, setup: Setup, root: Path) -> Restore:
    """``pitr-restore`` without ``--start``, then ``pg_ctl start``: a recovery driven only
    by restore_command (the wrapper calls ``wal-fetch``, lean path + read-ahead), as a
    standby or a hand-made recovery runs; no prefetcher of pitr-restore's own."""
    r = Restore(root, "seawall-rc")
    env = setup.seawall_env()
    env.pop("PGDATA", None)
    r.t0 = time.time()
    t_mono = time.monotonic()
    r.res = measure.run(
        [
            [
                *ctx.seawall_cmd(),
                "postgres",
                "pitr-restore",
                "--data-dir",
                str(r.data),
                "--latest",
                "--port",
                str(r.port),
            ]
        ],
        env=env,
        timeout=ctx.opts.timeout_s * 4,
    )
    if not r.res.ok:
        raise RuntimeError(f"seawall pitr-restore (no --start): {r.res.error()}")
    r.log_file = root / "server.log"
    subprocess.run(
        [pg_bin("pg_ctl"), "-D", str(r.data), "-l", str(r.log_file), "start"],
        user=PG_USER,
        cwd="/tmp",
        check=True,
        capture_output=True,
        timeout=120,
    )
    _wait_out_of_recovery(r, t_mono + ctx.opts.timeout_s * 4)
    r.wall = time.time() - r.t0
    return r


def pgbackrest_restore(
    ctx: Context, setup: Setup, root: Path, *, asynchronous: bool = False
) -> Restore:
    r = Restore(root, "pgbackrest-async" if asynchronous else "pgbackrest")
    conf = setup.br_conf_async if asynchronous else setup.br_conf
    # no head start from an earlier run's queue
    subprocess.run(["rm", "-rf", str(setup.br_work / "spool" / "archive")], check=True)
    r.data.mkdir()
    chown_postgres(r.data)
    r.data.chmod(0o700)
    r.log_file = root / "server.log"
    r.t0 = time.time()
    t_mono = time.monotonic()
    r.res = measure.run(
        [peers.pgbackrest(conf, "restore", "--type=default", f"--pg1-path={r.data}")],
        user=PG_USER,
        cwd=Path("/tmp"),
        timeout=ctx.opts.timeout_s * 4,
    )
    if not r.res.ok:
        raise RuntimeError(f"pgbackrest restore: {r.res.error()}")
    # what seawall's pitr-restore writes too: own port and socket, never archive
    with open(r.data / "postgresql.auto.conf", "a") as fh:
        fh.write(
            f"port = {r.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{root}'\narchive_mode = off\n"
            "archive_command = ''\nhot_standby = on\n"
        )
    subprocess.run(
        [pg_bin("pg_ctl"), "-D", str(r.data), "-l", str(r.log_file), "start"],
        user=PG_USER,
        cwd="/tmp",
        check=True,
        capture_output=True,
        timeout=120,
    )
    _wait_out_of_recovery(r, t_mono + ctx.opts.timeout_s * 4)
    r.wall = time.time() - r.t0
    return r


# --- the suite ----------------------------------------------------------------------


@dataclass
class Fetcher:
    """One way of fetching a segment: ``argv + [name, dest]`` with ``env`` as ``user``."""

    tool: str
    argv: list[str]
    env: dict[str, str] | None
    user: str | None


def _per_segment(fetchers: list[Fetcher], segments: list[str]) -> list[Row]:
    """Fetch each segment once with every fetcher, taking turns (restore_command's cost).

    Each fetcher writes ``RECOVERYXLOG`` in a scratch directory of its own
    (a read-ahead spool lives beside it); the turns put the other fetchers'
    calls between two calls of one, as replay would.
    """
    rows = [Row(suite=SUITE, tool=f.tool) for f in fetchers]
    walls: list[list[float]] = [[] for _ in fetchers]
    peaks: list[list[float]] = [[] for _ in fetchers]
    failed: list[str | None] = [None for _ in fetchers]
    scratch = [Path(tempfile.mkdtemp(prefix="seawall-bench-fetch-", dir="/tmp")) for _ in fetchers]
    try:
        for d, f in zip(scratch, fetchers, strict=True):
            if f.user:
                chown_postgres(d)
        for name in segments:
            for i, f in enumerate(fetchers):
                if failed[i]:
                    continue
                dest = scratch[i] / "RECOVERYXLOG"
                res = measure.run(
                    [[*f.argv, name, str(dest)]], env=f.env, user=f.user, cwd=Path("/tmp"),
                    timeout=120,
                )  # fmt: skip
                if not res.ok:
                    failed[i] = f"failed on {name} ({res.error()})"
                    continue
                walls[i].append(res.wall_s)
                peaks[i].append(rss_notes(res, "root")[0])
                dest.unlink(missing_ok=True)
    finally:
        for d in scratch:
            shutil.rmtree(d, ignore_errors=True)
    for row, w, pk, fail in zip(rows, walls, peaks, failed, strict=True):
        if w:
            row.samples = w
            row.median_s = measure.median(w)
            row.rss_mb = measure.median(pk)
            p90 = measure.percentile(w, 90)
            note = f"per segment, n={len(w)}, p90 {p90 * 1000:.0f} ms, sum {sum(w):.1f} s"
            row.notes = "; ".join(n for n in (note, fail) if n)
        else:
            row.notes = fail or ""
    return rows


def run(ctx: Context) -> list[Row]:
    unavailable = ctx.seawall_unavailable("postgres", "pitr-restore")
    if unavailable:
        return [Row(suite=SUITE, tool="seawall postgres pitr-restore", notes=unavailable)]
    setup = Setup(ctx)
    setup.build()
    # the source is not needed while restoring; stopping it frees CPU and RAM
    setup.cluster.set_archive_command("/bin/true")
    setup.cluster.stop()
    segments = setup.archived_segments()
    ctx.log(f"pitr: {len(segments)} archived segments")

    tools: dict[str, Callable[[Context, Setup, Path], Restore]] = {
        "seawall": seawall_restore,
        "pgbackrest": pgbackrest_restore,
        "pgbackrest-async": functools.partial(pgbackrest_restore, asynchronous=True),
        "seawall-rc": seawall_rc_restore,
    }
    walls: dict[str, list[float]] = {k: [] for k in tools}
    splits: dict[str, list[dict[str, float]]] = {k: [] for k in tools}
    rss: dict[str, list[float]] = {k: [] for k in tools}
    errors: dict[str, list[str]] = {k: [] for k in tools}
    notes: dict[str, str] = {}
    names = list(tools)
    for i in range(ctx.opts.repeat):
        # rotate the order so no tool always follows the same one
        order = names[i % len(names) :] + names[: i % len(names)]
        for tool in order:
            root = ctx.tmpdir(f"pitr-restore-{tool}-{i}", for_postgres=True)
            root.chmod(0o755)
            r: Restore | None = None
            try:
                ctx.log(f"pitr: run {i + 1}: {tool}")
                r = tools[tool](ctx, setup, root)
                rows = r.history_rows()
                if rows != setup.history_rows:
                    raise RuntimeError(
                        f"restored pgbench_history has {rows} rows, the source {setup.history_rows}"
                    )
                walls[tool].append(r.wall)
                splits[tool].append(r.split())
                if r.res is not None:
                    rss[tool].append(rss_notes(r.res, "root")[0])
                notes[tool] = r.prefetch_note()
                ctx.log(f"pitr: {tool} {r.wall:.1f}s {r.split()} {notes[tool]} rows ok ({rows})")
            except Exception as exc:
                errors[tool].append(f"{type(exc).__name__}: {str(exc)[:300]}")
                ctx.log(f"pitr: {tool} failed: {errors[tool][-1]}")
            finally:
                if r is not None:
                    r.cleanup()
                shutil.rmtree(root, ignore_errors=True)

    wal_mib = setup.wal_bytes / 2**20
    common = f"scale {setup.scale}, {wal_mib:.0f} MiB WAL after the base backups"
    labels = {
        "seawall": "seawall postgres pitr-restore --latest --start (zstd+age)",
        "pgbackrest": "pgbackrest restore + pg_ctl start until out of recovery (zst)",
        "pgbackrest-async": "the same with archive-async=y (archive-get queue 128MiB)",
        "seawall-rc": "seawall pitr-restore --latest (no --start) + pg_ctl start: "
        "restore_command only (lean wal-fetch + read-ahead)",
    }
    out: list[Row] = []
    for tool in ("pgbackrest", "pgbackrest-async", "seawall", "seawall-rc"):
        row = Row(suite=SUITE, tool=labels[tool], baseline=tool == "pgbackrest")
        if walls[tool]:
            row.samples = walls[tool]
            row.median_s = measure.median(walls[tool])
            row.rss_mb = max(rss[tool]) if rss[tool] else None
            keys = sorted({k for s in splits[tool] for k in s})
            med = {k: measure.median([s[k] for s in splits[tool] if k in s]) for k in keys}
            row.extra = {"split_median_s": med, "splits": splits[tool], "wal_mib": wal_mib}
            split_note = ", ".join(
                f"{k.removesuffix('_ms')} {v:.0f} ms" if k.endswith("_ms") else f"{k[:-2]} {v:.1f}s"
                for k, v in med.items()
            )
            row.notes = "; ".join(
                n for n in (common, split_note, notes.get(tool), "pgbench_history rows match") if n
            )
        if errors[tool]:
            failed = f"{len(errors[tool])} of {ctx.opts.repeat} runs failed: {errors[tool][0]}"
            row.notes = "; ".join(n for n in (row.notes, failed) if n)
        out.append(row)
    with contextlib.suppress(OSError):
        out[0].artifact_bytes = out[1].artifact_bytes = tree_size(setup.br_work / "repo")
        out[2].artifact_bytes = out[3].artifact_bytes = tree_size(setup.sw_dir)

    # restore_command's per-segment cost, on the same segments, taking turns
    sample = segments[1:-1][: max(1, min(len(segments), ctx.opts.wal_segments))]
    sw_env = ctx.seawall_env(setup.sw_dir, SEAWALL_WAL_READ_AHEAD_IDLE="5")
    sw_fetch = [*ctx.seawall_cmd(), "postgres", "wal-fetch"]
    out.extend(
        _per_segment(
            [
                Fetcher(
                    "pgbackrest archive-get (per segment)",
                    peers.pgbackrest(setup.br_conf, "archive-get"),
                    None,
                    PG_USER,
                ),
                Fetcher(
                    "seawall postgres wal-fetch (per segment, WAL_READ_AHEAD=0: lean path)",
                    sw_fetch,
                    sw_env | {"SEAWALL_WAL_READ_AHEAD": "0"},
                    None,
                ),
                Fetcher(
                    "seawall postgres wal-fetch (per segment, read-ahead on, the default)",
                    sw_fetch,
                    sw_env,
                    None,
                ),
            ],
            sample,
        )
    )
    # two baselines: the restore rows against pgBackRest's restore, the
    # per-segment rows against archive-get
    apply_baseline(out[:4])
    out[4].baseline = True
    apply_baseline(out[4:])
    return out
