"""PostgreSQL WAL file names: parse, format, next and previous (pure).

A segment name is ``TTTTTTTTXXXXXXXXYYYYYYYY``: timeline, then the segment
number split into a "log" (high part) and a "seg" (low part).  The split
depends on the segment size: there are ``0x100000000 // wal_segment_size``
segments per log (256 for the 16 MiB default), so the same name means a
different position under another ``--wal-segsize``.  That is why every
function here takes ``wal_segment_size``.

Other archive files: ``TTTTTTTT.history`` (timeline history),
``<segment>.XXXXXXXX.backup`` (backup history file; the segment is the
backup's start segment, XXXXXXXX the offset in it) and
``<segment>.partial`` (the last, incomplete segment of an old timeline,
archived at promotion).

LSN arithmetic (positions, and the segment an LSN falls in) is in
:mod:`seawall.walcore.lsn`. This module uses ``re`` and ``dataclasses``: the
lean wal-push/wal-fetch use the import-free checks of
:mod:`seawall.walcore.layout` instead (a unit test keeps the two in step).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

DEFAULT_WAL_SEGMENT_SIZE: Final = 16 * 1024 * 1024
_MIN_SEGMENT_SIZE: Final = 1024 * 1024
_MAX_SEGMENT_SIZE: Final = 1024 * 1024 * 1024

WalKind = Literal["segment", "partial", "backup", "history"]

# PostgreSQL writes upper-case hex only (IsXLogFileName uses "0123456789ABCDEF").
_SEGMENT = re.compile(r"([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})")
_PATTERNS: Final[tuple[tuple[WalKind, re.Pattern[str]], ...]] = (
    ("segment", re.compile(_SEGMENT.pattern)),
    ("partial", re.compile(_SEGMENT.pattern + r"\.partial")),
    ("backup", re.compile(_SEGMENT.pattern + r"\.([0-9A-F]{8})\.backup")),
    ("history", re.compile(r"([0-9A-F]{8})\.history")),
)


@dataclass(frozen=True, slots=True)
class WalFile:
    """A parsed archive file name.  ``segno`` is None only for .history."""

    name: str
    kind: WalKind
    timeline: int
    segno: int | None


def check_segment_size(wal_segment_size: int) -> None:
    """PostgreSQL allows powers of two from 1 MiB to 1 GiB."""
    size = wal_segment_size
    if (
        isinstance(size, bool)
        or not isinstance(size, int)
        or size < _MIN_SEGMENT_SIZE
        or size > _MAX_SEGMENT_SIZE
        or size & (size - 1)
    ):
        raise ValueError(
            f"wal_segment_size must be a power of two between 1 MiB and 1 GiB, got {size!r}"
        )


def segments_per_xlogid(wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE) -> int:
    check_segment_size(wal_segment_size)
    return 0x1_0000_0000 // wal_segment_size


def parse_wal_name(name: str, wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE) -> WalFile:
    """Parse an archive file name; ValueError if it is not a WAL file name."""
    per_log = segments_per_xlogid(wal_segment_size)
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        timeline = int(match.group(1), 16)
        if timeline == 0:
            raise ValueError(f"{name!r}: timeline 0 does not exist")
        if kind == "history":
            return WalFile(name, kind, timeline, None)
        log, seg = int(match.group(2), 16), int(match.group(3), 16)
        if seg >= per_log:
            raise ValueError(
                f"{name!r}: segment part {seg:#x} is out of range for "
                f"wal_segment_size {wal_segment_size}"
            )
        return WalFile(name, kind, timeline, log * per_log + seg)
    raise ValueError(f"{name!r} is not a WAL file name")


def segment_name(
    timeline: int, segno: int, wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE
) -> str:
    """The 24-hex name of segment number ``segno`` on ``timeline``."""
    per_log = segments_per_xlogid(wal_segment_size)
    if not 0 < timeline <= 0xFFFFFFFF:
        raise ValueError(f"timeline out of range: {timeline}")
    if not 0 <= segno < per_log * 0x1_0000_0000:
        raise ValueError(f"segment number out of range: {segno}")
    return f"{timeline:08X}{segno // per_log:08X}{segno % per_log:08X}"


def segno_of(name: str, wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE) -> int:
    """Segment number of a segment/.partial/.backup name (not .history)."""
    parsed = parse_wal_name(name, wal_segment_size)
    if parsed.segno is None:
        raise ValueError(f"{name!r} has no segment number")
    return parsed.segno


def next_segment_name(name: str, wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE) -> str:
    parsed = parse_wal_name(name, wal_segment_size)
    if parsed.segno is None:
        raise ValueError(f"{name!r} has no segment number")
    return segment_name(parsed.timeline, parsed.segno + 1, wal_segment_size)


def prev_segment_name(name: str, wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE) -> str:
    """The segment before ``name`` on its timeline (ValueError before the first)."""
    parsed = parse_wal_name(name, wal_segment_size)
    if parsed.segno is None:
        raise ValueError(f"{name!r} has no segment number")
    return segment_name(parsed.timeline, parsed.segno - 1, wal_segment_size)


def segment_range(
    start: str, stop: str, wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE
) -> Iterator[str]:
    """Segment names from ``start`` to ``stop`` inclusive, on start's timeline.

    Crossing a log boundary (…000000FF -> next log …00000000 at 16 MiB) is
    the classic off-by-one in hand-rolled WAL code; this goes by segno.
    """
    first = parse_wal_name(start, wal_segment_size)
    last = parse_wal_name(stop, wal_segment_size)
    if first.segno is None or last.segno is None:
        raise ValueError("segment_range needs segment names, not .history")
    if first.timeline != last.timeline:
        raise ValueError(f"{start} and {stop} are on different timelines")
    for segno in range(first.segno, last.segno + 1):
        yield segment_name(first.timeline, segno, wal_segment_size)
