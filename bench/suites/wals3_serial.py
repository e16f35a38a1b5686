"""wals3, group ``as-postgres``: archive N segments the way PostgreSQL's archiver does.

The per-segment lanes of :mod:`bench.suites.wals3` time one command on one
segment with nothing before or after it: they cannot show asynchronous
archiving (ADR 0017), whose work happens *between* PostgreSQL's commands. Here
each tool gets a pg_wal directory as PostgreSQL keeps it (the bench's real
16 MiB segments under their own names, each with ``archive_status/X.ready``)
and the commands run serially, oldest segment first, ``.ready`` renamed to
``.done`` after each success, the next command started at once: what
PostgreSQL's archiver does when it has a backlog.

Tools (each pass in a fresh repository prefix and a fresh pg_wal; the order
of the tools rotates from pass to pass):

* ``pgbackrest archive-push`` (S3 over TLS, zst + aes-256-cbc), synchronous:
  the baseline, as in the per-segment lanes;
* ``pgbackrest archive-push`` with ``archive-async=y``, ``process-max=2``
  (its spool-path, on the same S3 repository);
* ``seawall postgres wal-push`` (S3 over TLS, zstd + age), synchronous
  (``WAL_PUSH_AHEAD=0``);
* the same with ``WAL_PUSH_AHEAD=8`` (the detached pusher, two pushes at a
  time).

Each row's median is **total wall / N**: from the first command's start to
the last command's exit, divided by the number of segments — the honest
per-segment cost of archiving (an asynchronous tool's command is quick only
because its work ran in the background; the total includes that work when
it is on the critical path). The notes give the per-command median and p90
and the load average seen during the run.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from bench import measure, peers
from bench.cluster import chown_postgres
from bench.context import Context
from bench.report import Row

SUITE = "wals3"
#: segments the seawall pusher may work ahead of PostgreSQL
PUSH_AHEAD = 8


class SerialLane:
    """One tool archiving a whole pg_wal serially; :meth:`run_pass` does one pass."""

    def __init__(
        self,
        tool: str,
        command: Callable[[int, Path], tuple[Callable[[Path], measure.RunResult], Path]],
        *,
        baseline: bool = False,
    ) -> None:
        self.tool = tool
        self.command = command  # pass number, pg_wal -> (archive one file, artifact dir)
        self.baseline = baseline
        self.per_command: list[float] = []
        self.totals: list[float] = []  # total wall / N of each pass
        self.loads: list[float] = []
        self.error = ""
        self.stderr = ""  # the failing command's stderr, for the log

    def run_pass(self, n: int, pg_wal: Path) -> None:
        if self.error:
            return
        try:
            push, _ = self.command(n, pg_wal)
        except Exception as exc:  # a tool missing or failing to set up: its row says so
            self.error = f"not available (setup: {exc!s:.160})"
            return
        status = pg_wal / "archive_status"
        names = sorted(p.name[: -len(".ready")] for p in status.glob("*.ready"))
        self.loads.append(os.getloadavg()[0])
        start = time.perf_counter()
        for name in names:
            res = push(pg_wal / name)
            if not res.ok:
                self.error = f"failed on {name} ({res.error()})"
                self.stderr = res.stderr_tail
                return
            self.per_command.append(res.wall_s)
            os.rename(status / f"{name}.ready", status / f"{name}.done")
        self.totals.append((time.perf_counter() - start) / len(names))
        self.loads.append(os.getloadavg()[0])

    def row(self) -> Row:
        row = Row(suite=SUITE, tool=self.tool, baseline=self.baseline)
        if not self.totals:
            row.notes = self.error or "not run"
            return row
        row.samples = self.totals
        row.median_s = measure.median(self.totals)
        med = measure.median(self.per_command)
        p90 = measure.percentile(self.per_command, 90)
        row.extra = {
            "total_wall_per_segment_s": self.totals,
            "per_command_s": self.per_command,
            "per_command_median_s": med,
            "per_command_p90_s": p90,
        }
        row.notes = "; ".join(
            n
            for n in (
                f"as PostgreSQL archives: median = total wall / N over {len(self.totals)} "
                f"pass(es); per command median {med * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms "
                f"(n={len(self.per_command)}); load {min(self.loads):.1f}-{max(self.loads):.1f}",
                self.error,
            )
            if n
        )
        return row


def make_pg_wal(ctx: Context, label: str, segments: list[Path]) -> Path:
    """A data directory's pg_wal with ``segments`` (hard links: same bytes, no copy), all
    ``.ready``; the data directory gets the bench cluster's ``PG_VERSION`` and
    ``global/pg_control`` (pgBackRest reads them from ``pg1-path``)."""
    data = ctx.tmpdir(label, for_postgres=True) / "data"
    (data / "global").mkdir(parents=True)
    source = ctx.cluster().datadir
    shutil.copyfile(source / "PG_VERSION", data / "PG_VERSION")
    shutil.copyfile(source / "global" / "pg_control", data / "global" / "pg_control")
    pg_wal = data / "pg_wal"
    status = pg_wal / "archive_status"
    status.mkdir(parents=True)
    for seg in segments:
        try:
            os.link(seg, pg_wal / seg.name)
        except OSError:  # another filesystem
            shutil.copyfile(seg, pg_wal / seg.name)
        (status / f"{seg.name}.ready").touch()
    for p in (data, *data.rglob("*")):
        chown_postgres(p)
    return pg_wal


def serial_rows(
    ctx: Context,
    segments: list[Path],
    passes: int,
    pgbackrest_conf: Callable[[int, bool, Path], Path],
    seawall_env: Callable[[str, int], dict[str, str]],
    timeout: float,
) -> list[Row]:
    """The four lanes of the module docstring, ``passes`` passes, order rotating."""

    def pgbackrest(
        asynchronous: bool,
    ) -> Callable[..., tuple[Callable[[Path], measure.RunResult], Path]]:
        def setup(n: int, pg_wal: Path) -> tuple[Callable[[Path], measure.RunResult], Path]:
            conf = pgbackrest_conf(100 + 2 * n + asynchronous, asynchronous, pg_wal.parent)
            return (
                lambda seg: measure.run(
                    [peers.pgbackrest(conf, "archive-push", str(seg))],
                    user="postgres",
                    cwd=pg_wal.parent,
                    timeout=timeout,
                ),
                pg_wal,
            )

        return setup

    def seawall(ahead: int) -> Callable[..., tuple[Callable[[Path], measure.RunResult], Path]]:
        def setup(n: int, pg_wal: Path) -> tuple[Callable[[Path], measure.RunResult], Path]:
            env = seawall_env(f"serial-{ahead}", n)
            env.update(WAL_PUSH_AHEAD=str(ahead), WAL_PUSH_AHEAD_IDLE="5")
            cmd = [*ctx.seawall_cmd(), "postgres", "wal-push"]
            return (
                lambda seg: measure.run(
                    [[*cmd, f"pg_wal/{seg.name}"]], env=env, cwd=pg_wal.parent, timeout=timeout
                ),
                pg_wal,
            )

        return setup

    lanes = [
        SerialLane("as PostgreSQL: pgbackrest archive-push (S3/TLS), sync", pgbackrest(False), baseline=True),
        SerialLane("as PostgreSQL: pgbackrest archive-push (S3/TLS), archive-async=y process-max=2", pgbackrest(True)),
        SerialLane("as PostgreSQL: seawall wal-push (S3/TLS), sync (WAL_PUSH_AHEAD=0)", seawall(0)),
        SerialLane(f"as PostgreSQL: seawall wal-push (S3/TLS), async (WAL_PUSH_AHEAD={PUSH_AHEAD})", seawall(PUSH_AHEAD)),
    ]  # fmt: skip
    for n in range(passes):
        for j in range(len(lanes)):
            i = (n + j) % len(lanes)
            pg_wal = make_pg_wal(ctx, f"wals3-serial-{n}-{i}", segments)
            lanes[i].run_pass(n, pg_wal)
            if lanes[i].stderr:
                ctx.log(f"wals3: {lanes[i].tool}: {lanes[i].stderr[-2000:]}")
                lanes[i].stderr = ""
            shutil.rmtree(pg_wal.parent.parent, ignore_errors=True)
    rows = [lane.row() for lane in lanes]
    base = next((r for r in rows if r.baseline and r.median_s), None)
    for row in rows:
        if base and base.median_s and row.median_s is not None:
            row.ratio = row.median_s / base.median_s
    return rows
