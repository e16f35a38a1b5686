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


#: binary and decimal multipliers of :func:`parse_size`; a bare K/M/G/T is
#: binary, as in rsync's --bwlimit and pv -L
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}


def parse_size(text: str | int) -> int:
    """``50MiB`` / ``50M`` / ``1.5 GiB`` / ``800KB`` / ``1000`` -> bytes (a ``/s`` suffix is
    allowed, for rates); ValueError naming the accepted forms otherwise."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{text}: a size cannot be negative")
        return text
    s = text.strip().lower().replace(" ", "")
    s = s.removesuffix("/s")
    number = s.rstrip("abgikmt")
    unit = s[len(number) :]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or value < 0 or value != value or value == float("inf"):
        raise ValueError(
            f"{text!r} is not a size: use bytes or a number with KiB, MiB, GiB "
            "(or K, M, G), KB, MB, GB, e.g. 50MiB"
        )
    return int(value * _UNITS[unit])
