"""walcore's lean checks say what its full parsers say.

The lean wal-push/wal-fetch cannot import ``re`` or ``dataclasses`` (they
run once per segment), so walcore.layout checks names with string
operations while walcore.names and walcore.archived parse them with regular
expressions. Both must agree on every name, or the lean path would archive
or fetch what the general path refuses (or miss what it archived).
"""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from seawall.walcore import layout
from seawall.walcore.archive_info import ArchiveInfo, parse_archive_info
from seawall.walcore.archived import parse_archived_name, parse_wal_key
from seawall.walcore.names import parse_wal_name, prev_segment_name, segment_name

SHA = "0123456789abcdef0123456789abcdef01234567"
SEG = "000000010000000A000000FF"

NAMES = [
    SEG,
    "000000020000000000000001",
    "00000001000000000000000g",
    "0000000100000000000000",
    "000000010000000000000001.partial",
    "000000010000000000000001.00000028.backup",
    "00000002.history",
    "0000000A.history",
    "0000000a.history",
    "00000002.historyx",
    "2.history",
    "",
]

ENTRIES = [
    f"{SEG}-{SHA}",
    f"{SEG}-{SHA}.zst",
    f"{SEG}-{SHA}.zst.age",
    f"{SEG}-{SHA}.gz.age",
    f"{SEG}-{SHA}.age",
    f"{SEG}-{SHA}.gz",
    f"{SEG}-{SHA.upper()}.zst",
    f"{SEG}-{SHA[:-1]}.zst",
    f"{SEG}-{SHA}.zstd",
    f"{SEG}-{SHA}.age.zst",
    f"{SEG}-{SHA}.zst{layout.PARTIAL_MARKER}0a1b2c3d",
    f"{SEG}{layout.CLAIM_SUFFIX}",
    f"{SEG}.partial-{SHA}.zst",
    f"{SEG}.00000028.backup-{SHA}.zst",
    f"00000002.history-{SHA}.zst",
]


@pytest.mark.parametrize("name", NAMES)
def test_lean_name_checks_agree_with_the_parser(name: str) -> None:
    try:
        kind: str | None = parse_wal_name(name).kind
    except ValueError:
        kind = None
    # timeline 0 is refused by the parser: the lean path leaves that to the
    # page address check (and the general path), so it is not in NAMES
    assert layout.is_segment_name(name) == (kind == "segment"), name
    assert layout.is_history_name(name) == (kind == "history"), name


@given(st.text(alphabet="0123456789ABCDEFabcdefhistory.", min_size=14, max_size=26))
def test_lean_name_checks_agree_on_any_text(name: str) -> None:
    try:
        parsed = parse_wal_name(name)
        kind: str | None = parsed.kind if parsed.timeline else None
    except ValueError:
        kind = None
    if layout.is_segment_name(name) and name.startswith("00000000"):
        return  # timeline 0: see above
    assert layout.is_segment_name(name) == (kind == "segment"), name
    assert layout.is_history_name(name) == (kind == "history"), name


@pytest.mark.parametrize("entry", ENTRIES)
def test_versions_are_what_the_key_parser_accepts(entry: str) -> None:
    walname = entry.split("-", 1)[0] if "-" in entry else SEG
    obj = parse_archived_name(entry)
    expected = obj is not None and obj.name == walname
    assert layout.is_version_of(entry, walname) == expected, entry
    if expected:
        assert obj is not None
        assert layout.sha_of(entry, walname) == obj.sha256_prefix
        assert layout.archived_name(walname, obj.sha256_prefix + "ff" * 12, "") in entry


def test_subdirectories_and_keys() -> None:
    assert layout.subdir(SEG) == SEG[:16]
    assert layout.subdir(f"{SEG}.partial") == SEG[:16]
    assert layout.subdir("00000002.history") == layout.HISTORY_DIR
    key = f"{layout.WAL_ROOT}/main/{SEG[:16]}/{layout.archived_name(SEG, SHA * 2, '.zst.age')}"
    obj = parse_wal_key(key)
    assert obj is not None
    assert (obj.key, obj.name, obj.sha256_prefix, obj.compression, obj.encrypted) == (
        key,
        SEG,
        SHA,
        "zstd",
        True,
    )
    assert parse_archived_name(key) is None  # a key is not a bare name
    assert parse_wal_key(f"{SEG}{layout.CLAIM_SUFFIX}") is None


def test_prev_segment_name_is_the_inverse_of_next() -> None:
    size = 16 << 20
    assert prev_segment_name("000000010000000100000000", size) == "0000000100000000000000FF"
    assert prev_segment_name("000000010000000100000000", 64 << 20) == "00000001000000000000003F"
    for segno in (1, 255, 256, 4096):
        assert prev_segment_name(segment_name(3, segno, size), size) == segment_name(
            3, segno - 1, size
        )
    with pytest.raises(ValueError):
        prev_segment_name("000000010000000000000000", size)
    with pytest.raises(ValueError):
        prev_segment_name("00000002.history", size)


def test_archive_info_round_trip_and_lean_field() -> None:
    info = ArchiveInfo("7300000000000000042", 16 << 20, "main", "2026-12-06T00:00:00+00:00")
    text = info.to_json()
    assert parse_archive_info(text, "other") == info
    assert layout.info_field(text.decode(), "system_identifier") == "7300000000000000042"
    assert layout.info_field(text.decode(), "wal_segment_size") == str(16 << 20)
    older = b'{"system_identifier": 5, "wal_segment_size": 1048576}'
    assert parse_archive_info(older, "fallback") == ArchiveInfo("5", 1 << 20, "fallback", "")
    for bad in (
        b"{",
        b'{"wal_segment_size": 1}',
        b'{"system_identifier": 1, "wal_segment_size": "x"}',
    ):
        with pytest.raises((ValueError, KeyError, TypeError)):
            parse_archive_info(bad, "main")
