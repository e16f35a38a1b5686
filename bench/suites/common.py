"""Helpers shared by the suites: repeat a run, turn results into a Row."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from bench.measure import RunResult, median
from bench.report import Row

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
    row = Row(suite=suite, tool=tool, baseline=baseline)
    if unavailable:
        row.notes = unavailable
        return row
    walls: list[float] = []
    rss_values: list[float] = []
    note = ""
    for i in range(repeat):
        try:
            res = attempt(i)
        except Exception as exc:  # a setup step failed: report, do not crash
            row.notes = f"not available (error: {type(exc).__name__}: {str(exc)[:160]})"
            return row
        if not res.ok:
            prefix = "not available" if not walls else f"failed on run {i + 1}"
            row.notes = f"{prefix} ({res.error()})"
            if not walls:
                return row
            break
        walls.append(res.wall_s)
        value, note = rss_notes(res, rss)
        rss_values.append(value)
    row.samples = walls
    row.median_s = median(walls)
    row.rss_mb = max(rss_values)
    if artifact is not None:
        try:
            row.artifact_bytes = artifact()
        except OSError:
            row.artifact_bytes = None
    row.notes = "; ".join(n for n in (note, row.notes) if n)
    return row
