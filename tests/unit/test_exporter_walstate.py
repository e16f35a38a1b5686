"""The incremental run/gap bookkeeping of the WAL watcher against a recount."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from seawall.exporter.wal_watch import _Timeline, segment_name_of


def recount_runs(segs: set[int]) -> int:
    return sum(1 for s in segs if s - 1 not in segs)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=120))
def test_runs_match_a_full_recount(ops: list[tuple[bool, int]]) -> None:
    tl = _Timeline()
    model: set[int] = set()
    for add, segno in ops:
        if add:
            tl.add(segno, 1.0, 10)
            model.add(segno)
        else:
            tl.remove(segno)
            model.discard(segno)
        assert tl.runs == recount_runs(model)
        assert tl.bytes == 10 * len(model)
        assert set(tl.segs) == model


def test_run_end() -> None:
    tl = _Timeline()
    for s in (1, 2, 3, 5):
        tl.add(s, float(s), 1)
    assert tl.run_end(1) == 3
    assert tl.run_end(5) == 5
    assert tl.run_end(4) is None


def test_segment_names_of_stored_files() -> None:
    seg = "000000010000000000000003"
    assert segment_name_of(f"{seg}-{'a' * 40}.zst.age") == seg
    assert segment_name_of(f"{seg}-{'a' * 40}") == seg
    assert segment_name_of(f"{seg}.zst.age") == seg  # older bare layout
    assert segment_name_of(f"{seg}.partial-{'a' * 40}.zst") is None
    assert segment_name_of(f"{seg}-{'a' * 40}.zst.partial-1a2b3c4d") is None  # temporary
    assert segment_name_of(f"00000002.history-{'a' * 40}.zst") is None
    assert segment_name_of(f"{seg}.00000028.backup-{'a' * 40}.zst") is None
    assert segment_name_of("archive.json") is None
