"""Reading the identity of a WAL segment from its first page (pure).

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
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

XLP_LONG_HEADER = 0x0002
LONG_HEADER_SIZE = 40
_SHORT = struct.Struct("<HHIQI")
_LONG = struct.Struct("<QII")


class SegmentHeaderError(ValueError):
    """The bytes do not start with a WAL segment's long page header."""


@dataclass(frozen=True)
class SegmentHeader:
    magic: int
    timeline: int
    pageaddr: int
    system_identifier: int
    segment_size: int
    block_size: int


def read_header(head: bytes) -> SegmentHeader:
    """Parse the long page header from the first bytes of a segment."""
    if len(head) < LONG_HEADER_SIZE:
        raise SegmentHeaderError("file is shorter than a WAL page header")
    magic, info, tli, pageaddr, _rem = _SHORT.unpack_from(head, 0)
    if not info & XLP_LONG_HEADER:
        raise SegmentHeaderError("first page has no long header (not the start of a WAL segment)")
    sysid, seg_size, blcksz = _LONG.unpack_from(head, 24)
    if seg_size < 1 << 20 or seg_size > 1 << 30 or seg_size & (seg_size - 1):
        raise SegmentHeaderError(f"implausible segment size {seg_size} in the header")
    if blcksz < 1024 or blcksz & (blcksz - 1):
        raise SegmentHeaderError(f"implausible WAL block size {blcksz} in the header")
    return SegmentHeader(magic, tli, pageaddr, sysid, seg_size, blcksz)
