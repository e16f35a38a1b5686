"""Pure archive logic: gaps per timeline, how far replay reaches, timelines."""

from __future__ import annotations

from hypothesis import given, strategies as st

from seawall.postgres.wal.archive import (
    ArchivedFile,
    ArchiveListing,
    HistoryEntry,
    analyse,
    archive_missing_histories,
    find_gaps,
    parse_history,
    reach,
)
from seawall.walcore.header import SegmentHeaderError, read_header
from seawall.walcore.names import segment_name

SIZE = 16 << 20


def listing(
    files: dict[int, list[int]], histories: dict[int, list[HistoryEntry]] | None = None
) -> ArchiveListing:
    out = ArchiveListing(segment_size=SIZE, histories=histories or {})
    for tl, segnos in files.items():
        for n in segnos:
            name = segment_name(tl, n, SIZE)
            out.files.append(ArchivedFile(name, f"k/{name}", "segment", tl, n, 1, 1000.0 + n))
    return out


@given(st.sets(st.integers(min_value=0, max_value=600), min_size=1, max_size=80))
def test_gaps_are_exactly_the_missing_segments(segnos: set[int]) -> None:
    gaps = find_gaps(listing({1: sorted(segnos)}))
    missing: set[int] = set()
    for g in gaps:
        first = int(g.first_missing[8:16], 16) * 256 + int(g.first_missing[16:], 16)
        assert g.count >= 1
        missing.update(range(first, first + g.count))
    assert missing == set(range(min(segnos), max(segnos) + 1)) - segnos


def test_reach_crosses_log_boundary_and_stops_at_gap() -> None:
    lst = listing({1: [0xFE, 0xFF, 0x100, 0x101, 0x103]})
    r = reach(lst, segment_name(1, 0xFE, SIZE))
    assert r.last_segment == "000000010000000100000001"
    assert r.missing == "000000010000000100000002"
    assert r.end_lsn == 0x102 * SIZE


def test_reach_follows_timeline_switch_from_history() -> None:
    # timeline 2 branched from 1 in segment 5; timeline 1 went on to segment 8
    hist = {2: [HistoryEntry(1, 5 * SIZE + 0x1000)]}
    lst = listing({1: [3, 4, 5, 6, 7, 8], 2: [5, 6]}, hist)
    r = reach(lst, segment_name(1, 3, SIZE))
    assert r.timeline == 2 and r.last_segment == segment_name(2, 6, SIZE)
    assert r.missing is None
    # explicitly staying on timeline 1
    r1 = reach(lst, segment_name(1, 3, SIZE), target_tl=1)
    assert r1.last_segment == segment_name(1, 8, SIZE)


def test_parse_history() -> None:
    text = "1\t0/5001000\tno recovery target specified\n\n2\t0/9000000\tbefore 2026-01-01\n"
    assert parse_history(text) == [HistoryEntry(1, 0x5001000), HistoryEntry(2, 0x9000000)]


def test_segment_header_checks() -> None:
    import struct

    good = (
        struct.pack("<HHIQI", 0xD110, 2, 1, 3 * SIZE, 0)
        + b"\0" * 4
        + struct.pack("<QII", 7, SIZE, 8192)
    )
    h = read_header(good)
    assert (h.system_identifier, h.segment_size, h.pageaddr) == (7, SIZE, 3 * SIZE)
    for bad in (good[:20], b"\0" * 40, good[:32] + struct.pack("<I", 12345) + good[36:]):
        try:
            read_header(bad)
        except SegmentHeaderError:
            continue
        raise AssertionError("accepted a bad header")


def test_duplicates_are_names_stored_more_than_once() -> None:
    from seawall.postgres.wal.archive import find_duplicates

    lst = listing({1: [3, 4]})
    name = segment_name(1, 4, SIZE)
    sha_a, sha_b = "a" * 40, "b" * 40
    lst.files = [
        ArchivedFile(f.name, f"d/{f.name}-{sha_a}.zst", f.kind, f.timeline, f.segno, 1, 1.0)
        for f in lst.files
    ]
    assert find_duplicates(lst) == []
    lst.files.append(ArchivedFile(name, f"d/{name}-{sha_b}.zst", "segment", 1, 4, 1, 2.0))
    (dup,) = find_duplicates(lst)
    assert dup.name == name and dup.different_content
    assert dup.keys == (f"d/{name}-{sha_a}.zst", f"d/{name}-{sha_b}.zst")
    # the same content twice (another encoding) is reported too: wal-fetch refuses it alike
    same = listing({1: [3]})
    (only,) = same.files
    same.files = [
        ArchivedFile(only.name, f"d/{only.name}-{sha_a}{s}", "segment", 1, 3, 1, 1.0)
        for s in (".zst", ".zst.age")
    ]
    (dup,) = find_duplicates(same)
    assert not dup.different_content


def test_window_right_after_base_backup_does_not_end_before_it_starts() -> None:
    """Issue 12: the segments were pushed (mtime 1003) before the base backup's
    manifest recorded its end (2000), so the window printed latest < earliest.
    With the backup's own WAL archived, its end time is reachable: the window
    ends at least there (length 0, as the exporter shows), never before."""
    from datetime import UTC, datetime

    from seawall.postgres.wal.archive import BaseRef, analyse

    lst = listing({1: [2, 3]})
    finished = datetime.fromtimestamp(2000.0, UTC)
    base = BaseRef(
        "20261205T000000Z-abcd",
        1,
        segment_name(1, 2, SIZE),
        segment_name(1, 3, SIZE),
        3 * SIZE + 0x100,
        finished,
    )
    report = analyse(lst, "main", [base], datetime.fromtimestamp(2100.0, UTC))
    assert report.earliest == finished
    assert report.latest is not None and report.latest >= report.earliest
    assert report.latest == finished
    # later pushes move the end past the backup's end
    later = listing({1: [2, 3, 4]})
    later.files[-1] = ArchivedFile(
        later.files[-1].name, later.files[-1].key, "segment", 1, 4, 1, 2050.0
    )
    report = analyse(later, "main", [base], datetime.fromtimestamp(2100.0, UTC))
    assert report.latest == datetime.fromtimestamp(2050.0, UTC)


def test_missing_history_files_are_reported() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 6, tzinfo=UTC)
    lst = listing({1: [3, 4, 5], 2: [5, 6]})
    assert archive_missing_histories(lst) == ["00000002.history"]
    report = analyse(lst, "main", [], now)
    assert not report.ok and report.to_dict()["missing_histories"] == ["00000002.history"]
    # an archive that starts on a later timeline needs no history for it
    assert archive_missing_histories(listing({2: [5, 6]})) == []
    hist = {2: [HistoryEntry(1, 5 * SIZE)], 3: [HistoryEntry(2, 6 * SIZE)]}
    assert archive_missing_histories(listing({1: [4, 5], 3: [6]}, {3: hist[3]})) == [
        "00000002.history"
    ]
    assert analyse(listing({1: [4, 5], 2: [5, 6]}, hist), "main", [], now).ok


def test_backup_history_stop_time_is_rounded_up_and_zone_aware() -> None:
    from datetime import UTC, datetime

    from seawall.postgres.wal.archive import parse_backup_stop_time

    text = (
        "START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\n"
        "STOP WAL LOCATION: 0/3000100 (file 000000010000000000000003)\n"
        "START TIME: 2026-12-06 09:48:14 {z}\nSTOP TIME: 2026-12-06 09:48:59 {z}\n"
    )
    assert parse_backup_stop_time(text.format(z="UTC")) == datetime(
        2026, 12, 6, 9, 49, 0, tzinfo=UTC
    )
    assert parse_backup_stop_time(text.format(z="Europe/Berlin")) == datetime(
        2026, 12, 6, 8, 49, 0, tzinfo=UTC
    )
    assert parse_backup_stop_time(text.format(z="Not/AZone")) is None
    assert parse_backup_stop_time("LABEL: x\n") is None
