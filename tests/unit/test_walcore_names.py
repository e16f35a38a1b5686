"""WAL file name arithmetic, checked against hand-computed names."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from seawall.walcore.lsn import format_lsn, lsn_to_segment_name, parse_lsn
from seawall.walcore.names import (
    next_segment_name,
    parse_wal_name,
    segment_name,
    segment_range,
    segments_per_xlogid,
    segno_of,
)

MIB = 1024 * 1024


def test_parse_kinds() -> None:
    seg = parse_wal_name("000000010000000000000001")
    assert (seg.kind, seg.timeline, seg.segno) == ("segment", 1, 1)
    # log 1, seg 0xFF with 256 segments per log: 1 * 256 + 255
    assert segno_of("0000000100000001000000FF") == 511
    backup = parse_wal_name("000000010000000000000014.00000028.backup")
    assert (backup.kind, backup.segno) == ("backup", 0x14)
    partial = parse_wal_name("00000002000000000000002A.partial")
    assert (partial.kind, partial.timeline, partial.segno) == ("partial", 2, 42)
    history = parse_wal_name("0000000A.history")
    assert (history.kind, history.timeline, history.segno) == ("history", 10, None)


@pytest.mark.parametrize(
    "name",
    [
        "00000001000000000000001",  # 23 hex digits
        "0000000100000000000000010",  # 25
        "00000001000000000000000a",  # PostgreSQL writes upper case only
        "000000000000000000000001",  # timeline 0
        "000000010000000000000100",  # seg 0x100 does not exist at 16 MiB
        "00000001.History",
        "000000010000000000000001.zst",
        "",
    ],
)
def test_rejects_non_wal_names(name: str) -> None:
    with pytest.raises(ValueError):
        parse_wal_name(name)


def test_segment_size_changes_the_split() -> None:
    # 64 MiB: 64 segments per log, so …0000000100000000 is segno 64
    assert segments_per_xlogid(64 * MIB) == 64
    assert segno_of("000000010000000100000000", 64 * MIB) == 64
    with pytest.raises(ValueError):
        parse_wal_name("000000010000000000000040", 64 * MIB)
    # 1 GiB: 4 per log; 1 MiB: 4096 per log
    assert segment_name(1, 5, 1024 * MIB) == "000000010000000100000001"
    assert segment_name(1, 4096, MIB) == "000000010000000100000000"
    for bad in (0, 3 * MIB, 512 * 1024, 2048 * MIB):
        with pytest.raises(ValueError):
            segments_per_xlogid(bad)


def test_log_boundary() -> None:
    assert next_segment_name("0000000100000000000000FF") == "000000010000000100000000"
    assert list(segment_range("0000000100000000000000FE", "000000010000000100000001")) == [
        "0000000100000000000000FE",
        "0000000100000000000000FF",
        "000000010000000100000000",
        "000000010000000100000001",
    ]
    with pytest.raises(ValueError):
        list(segment_range("000000010000000000000001", "000000020000000000000002"))


def test_lsn() -> None:
    assert parse_lsn("16/B374D848") == 0x16_B374_D848
    assert format_lsn(0x16_B374_D848) == "16/B374D848"
    # 0x16B374D848 // 16 MiB = 0x16B3: log 0x16, seg 0xB3
    assert lsn_to_segment_name("16/B374D848", 1) == "0000000100000016000000B3"
    assert lsn_to_segment_name("0/3000028", 2) == "000000020000000000000003"
    for bad in ("", "16", "/1", "xyz/1", "123456789/0"):
        with pytest.raises(ValueError):
            parse_lsn(bad)


@given(
    st.integers(1, 0xFFFFFFFF),
    st.sampled_from([MIB, 16 * MIB, 64 * MIB, 1024 * MIB]),
    st.data(),
)
def test_name_round_trip(timeline: int, size: int, data: st.DataObject) -> None:
    segno = data.draw(st.integers(0, segments_per_xlogid(size) * 0x1_0000_0000 - 1))
    name = segment_name(timeline, segno, size)
    parsed = parse_wal_name(name, size)
    assert (parsed.timeline, parsed.segno, parsed.kind) == (timeline, segno, "segment")
    if segno + 1 < segments_per_xlogid(size) * 0x1_0000_0000:
        assert segno_of(next_segment_name(name, size), size) == segno + 1
