"""Result rows, and printing them as a table, JSON or markdown."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One tool in one suite. ``None`` means not measured."""

    suite: str
    tool: str
    median_s: float | None = None
    ratio: float | None = None  # median / baseline median (lower is faster)
    rss_mb: float | None = None  # peak RSS that matters for the row (see notes)
    artifact_bytes: int | None = None
    notes: str = ""
    baseline: bool = False
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.median_s is not None or bool(self.extra)


def apply_baseline(rows: list[Row]) -> None:
    """Fill ``ratio`` of each row from the suite's baseline row."""
    base = next((r for r in rows if r.baseline and r.median_s), None)
    if base is None or not base.median_s:
        return
    for row in rows:
        if row.median_s is not None:
            row.ratio = row.median_s / base.median_s


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 2**30:
        return f"{n / 2**20:.0f} MiB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} B"


def _cells(row: Row) -> list[str]:
    return [
        row.suite,
        row.tool + (" (baseline)" if row.baseline else ""),
        "-" if row.median_s is None else f"{row.median_s:.3f}",
        "-" if row.ratio is None else f"{row.ratio:.2f}x",
        "-" if row.rss_mb is None else f"{row.rss_mb:.0f}",
        _fmt_size(row.artifact_bytes),
        row.notes,
    ]


HEADERS = ["suite", "tool", "median s", "vs baseline", "peak RSS MB", "artifact", "notes"]


def text_table(rows: list[Row]) -> str:
    cells = [HEADERS] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS) - 1)]
    lines = []
    for i, c in enumerate(cells):
        line = "  ".join(v.ljust(widths[j]) for j, v in enumerate(c[:-1])) + "  " + c[-1]
        lines.append(line.rstrip())
        if i == 0:
            lines.append("-" * min(160, len(line)))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
    return "\n".join(out)


def environment() -> dict[str, Any]:
    import os

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        # other jobs on the machine skew every row alike; worth knowing
        "loadavg_at_start": tuple(round(x, 2) for x in os.getloadavg()),
    }


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2, default=str) + "\n"
    )


def write_markdown(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    lines = ["# seawall benchmark results", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += ["", markdown_table(rows), ""]
    path.write_text("\n".join(lines))
