"""Human forms of sizes and durations, for every screen seawall prints.

A leaf module (it imports nothing of seawall) so that every layer can use
it: the runner's commands, ``seawall status`` in health (which must not
import the runner, see the import-linter contracts in pyproject.toml) and
the progress bar print the same "1.5 GiB" and "12m" for the same numbers.
"""

from __future__ import annotations


def human_size(n: int | float | None) -> str:
    """Binary units, one decimal above bytes: ``512 B``, ``1.5 GiB``; ``-`` when unknown."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def human_duration(seconds: float | None) -> str:
    """Short human duration: 45s, 12m, 5.2h, 3.1d; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
