"""LSN arithmetic: positions in the WAL and the segment each falls in (pure).

An LSN is a 64-bit byte position written ``HIGH/LOW`` in hex
(``16/B374D848``); the segment holding it is ``position // wal_segment_size``
on the timeline the caller names (the LSN alone does not say which).
"""

from __future__ import annotations

from seawall.walcore.names import DEFAULT_WAL_SEGMENT_SIZE, check_segment_size, segment_name


def parse_lsn(lsn: str) -> int:
    """``'16/B374D848'`` -> integer byte position."""
    high, sep, low = lsn.partition("/")
    if not sep or not high or not low or len(high) > 8 or len(low) > 8:
        raise ValueError(f"not an LSN: {lsn!r}")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise ValueError(f"not an LSN: {lsn!r}") from None


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def lsn_to_segment_name(
    lsn: str | int, timeline: int, wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE
) -> str:
    """The segment containing ``lsn`` (like pg_walfile_name for a start LSN).

    Note: for a *stop* LSN exactly on a segment boundary PostgreSQL's
    pg_walfile_name returns the previous segment; callers computing a
    backup's stop segment should pass ``stop_lsn - 1`` in that case.
    """
    position = parse_lsn(lsn) if isinstance(lsn, str) else lsn
    check_segment_size(wal_segment_size)
    return segment_name(timeline, position // wal_segment_size, wal_segment_size)
