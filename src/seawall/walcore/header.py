"""The identity of a WAL segment, from its first page (pure, lean).

Every WAL segment starts with an ``XLogLongPageHeaderData`` (PostgreSQL's
``access/xlog_internal.h``)::

    offset  type    field
    0       uint16  xlp_magic       WAL format version (changes per major)
    2       uint16  xlp_info        flag bits; XLP_LONG_HEADER = 0x0002
    4       uint32  xlp_tli         timeline of the first record on the page
    8       uint64  xlp_pageaddr    LSN of the page (= segment start here)
    16      uint32  xlp_rem_len
    (padding to 24 = MAXALIGN of the short header)
    24      uint64  xlp_sysid       the cluster's system identifier
    32      uint32  xlp_seg_size    wal_segment_size
    36      uint32  xlp_xlog_blcksz WAL block size

Native byte order; every platform PostgreSQL supports here is little-endian,
and a big-endian archive would fail the page-address check loudly rather than
pass silently. ``xlp_tli`` is *not* compared with the name's timeline: after a
promotion the first segment of the new timeline begins with a copy of the
old timeline's page.

Lean (``int.from_bytes``, no ``struct`` or ``dataclasses``): the lean
wal-push reads every segment's header with :func:`read_header` too, so the
two pushes cannot disagree about what a plausible header is.
"""

from __future__ import annotations

XLP_LONG_HEADER = 0x0002
LONG_HEADER_SIZE = 40
#: PostgreSQL's bounds of wal_segment_size (a power of two in between)
MIN_SEGMENT_SIZE = 1 << 20
MAX_SEGMENT_SIZE = 1 << 30


class SegmentHeaderError(ValueError):
    """The bytes do not start with a WAL segment's long page header."""


class SegmentHeader:
    """The fields of a segment's long page header that seawall uses."""

    __slots__ = (
        "block_size",
        "magic",
        "pageaddr",
        "segment_size",
        "system_identifier",
        "timeline",
    )

    def __init__(
        self,
        magic: int,
        timeline: int,
        pageaddr: int,
        system_identifier: int,
        segment_size: int,
        block_size: int,
    ) -> None:
        self.magic = magic
        self.timeline = timeline
        self.pageaddr = pageaddr
        self.system_identifier = system_identifier
        self.segment_size = segment_size
        self.block_size = block_size

    def _fields(self) -> tuple[int, ...]:
        return (
            self.magic,
            self.timeline,
            self.pageaddr,
            self.system_identifier,
            self.segment_size,
            self.block_size,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SegmentHeader):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        names = ("magic", "timeline", "pageaddr", "system_identifier", "segment_size", "block_size")
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"SegmentHeader({inner})"


def _u(head: bytes, start: int, end: int) -> int:
    return int.from_bytes(head[start:end], "little")


def is_segment_size(size: int) -> bool:
    """A power of two from 1 MiB to 1 GiB (what PostgreSQL allows)."""
    return MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE and not size & (size - 1)


def read_header(head: bytes) -> SegmentHeader:
    """Parse the long page header from the first bytes of a segment."""
    if len(head) < LONG_HEADER_SIZE:
        raise SegmentHeaderError("file is shorter than a WAL page header")
    if not _u(head, 2, 4) & XLP_LONG_HEADER:
        raise SegmentHeaderError("first page has no long header (not the start of a WAL segment)")
    seg_size, blcksz = _u(head, 32, 36), _u(head, 36, 40)
    if not is_segment_size(seg_size):
        raise SegmentHeaderError(f"implausible segment size {seg_size} in the header")
    if blcksz < 1024 or blcksz & (blcksz - 1):
        raise SegmentHeaderError(f"implausible WAL block size {blcksz} in the header")
    return SegmentHeader(
        magic=_u(head, 0, 2),
        timeline=_u(head, 4, 8),
        pageaddr=_u(head, 8, 16),
        system_identifier=_u(head, 24, 32),
        segment_size=seg_size,
        block_size=blcksz,
    )
