"""The WAL archive watcher: inotify events, gaps, the PITR window."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.registry import CollectorRegistry

from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.wal_watch import WalWatcher
from tests.integration.exporter.builders import (
    T0,
    segment,
    wal_path,
    write_archive_info,
    write_base,
    write_wal,
)

CL = {"cluster": "main"}

# watchdog warns (harmlessly) when a directory is created twice in a race
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def watched(root: Path) -> Iterator[tuple[WalWatcher, CollectorRegistry]]:
    """A watcher whose periodic rescan never fires during the test."""
    watcher = WalWatcher(root, rescan_interval=3600)
    watcher.start()
    yield watcher, make_registry(SeawallCollector(root, wal=watcher))
    watcher.stop()


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_new_segment_shows_up_without_a_rescan_and_a_hole_is_a_gap(
    root: Path, watched: tuple[WalWatcher, CollectorRegistry]
) -> None:
    watcher, reg = watched
    write_archive_info(root, "main")
    for segno in range(1, 6):
        write_wal(root, "main", segment(1, segno))
    # the archive did not exist when the watcher started: the first scrape
    # starts the observer and rescans once
    assert reg.get_sample_value("seawall_wal_segments", CL) == 5
    assert reg.get_sample_value("seawall_wal_gaps", CL) == 0
    rescans = watcher.rescans

    # a new segment, renamed into place as wal-push does: seen via inotify
    before = time.time()
    write_wal(root, "main", segment(1, 6))
    assert eventually(lambda: reg.get_sample_value("seawall_wal_segments", CL) == 6)
    newest = reg.get_sample_value("seawall_wal_last_archived_timestamp_seconds", CL)
    assert newest is not None and newest >= before - 1
    age = reg.get_sample_value("seawall_wal_newest_segment_age_seconds", CL)
    assert age is not None and 0 <= age < 60

    # deleting one in the middle shows a gap of one missing segment
    wal_path(root, "main", segment(1, 3)).unlink()
    assert eventually(lambda: reg.get_sample_value("seawall_wal_gaps", CL) == 1)
    assert reg.get_sample_value("seawall_wal_missing_segments", CL) == 1
    assert reg.get_sample_value("seawall_wal_segments", CL) == 5
    # filling it closes the gap; a far-away segment opens a 2nd one
    write_wal(root, "main", segment(1, 3))
    write_wal(root, "main", segment(1, 10))
    assert eventually(lambda: reg.get_sample_value("seawall_wal_missing_segments", CL) == 3)
    assert reg.get_sample_value("seawall_wal_gaps", CL) == 1
    # crossing a log boundary (…FF -> next log) is contiguous
    write_wal(root, "main", segment(1, 255))
    write_wal(root, "main", segment(1, 256))
    assert eventually(lambda: reg.get_sample_value("seawall_wal_segments", CL) == 9)
    assert reg.get_sample_value("seawall_wal_gaps", CL) == 2
    assert watcher.rescans == rescans, "a rescan happened; events were not used"
    # and a full rescan agrees with the incremental state
    watcher.rescan()
    assert reg.get_sample_value("seawall_wal_gaps", CL) == 2
    assert reg.get_sample_value("seawall_wal_segments", CL) == 9


def test_history_partial_and_temporary_files_are_not_segments(
    root: Path, watched: tuple[WalWatcher, CollectorRegistry]
) -> None:
    watcher, reg = watched
    write_wal(root, "main", segment(1, 1))
    watcher.rescan()
    write_wal(root, "main", "00000002.history")
    write_wal(root, "main", segment(1, 2) + ".partial")
    tmp = (
        root
        / "postgresql/wal/main"
        / segment(1, 5)[:16]
        / (segment(1, 5) + "-" + "a" * 40 + ".zst.partial-1234")
    )
    tmp.write_bytes(b"x")
    write_wal(root, "main", segment(1, 2))
    assert eventually(lambda: reg.get_sample_value("seawall_wal_segments", CL) == 2)
    time.sleep(0.3)
    assert reg.get_sample_value("seawall_wal_segments", CL) == 2
    assert reg.get_sample_value("seawall_wal_gaps", CL) == 0


def test_archive_created_after_start_is_found(root: Path) -> None:
    """No archive directory at start: the rescan fallback picks it up."""
    watcher = WalWatcher(root, rescan_interval=1)
    watcher.start()
    try:
        reg = make_registry(SeawallCollector(root, wal=watcher))
        assert reg.get_sample_value("seawall_wal_segments", CL) is None
        write_wal(root, "main", segment(1, 1))
        assert eventually(lambda: reg.get_sample_value("seawall_wal_segments", CL) == 1)
        write_wal(root, "main", segment(1, 2))
        assert eventually(lambda: reg.get_sample_value("seawall_wal_segments", CL) == 2)
    finally:
        watcher.stop()


def test_pitr_window(root: Path, watched: tuple[WalWatcher, CollectorRegistry]) -> None:
    watcher, reg = watched
    t_first, t_second = T0, T0 + timedelta(hours=12)
    write_base(root, "main", finished=t_first, start_wal=segment(1, 2), stop_wal=segment(1, 3))
    write_base(root, "main", finished=t_second, start_wal=segment(1, 8), stop_wal=segment(1, 8))
    last_mtime = (T0 + timedelta(hours=20)).timestamp()
    for segno in range(2, 12):
        write_wal(root, "main", segment(1, segno), mtime=last_mtime - (12 - segno))
    watcher.rescan()
    assert (
        reg.get_sample_value("seawall_pitr_earliest_timestamp_seconds", CL) == t_first.timestamp()
    )
    assert reg.get_sample_value("seawall_pitr_latest_timestamp_seconds", CL) == last_mtime - 1
    assert (
        reg.get_sample_value("seawall_pitr_window_seconds", CL)
        == last_mtime - 1 - t_first.timestamp()
    )
    # a hole between the two base backups: only the newer one starts the window
    wal_path(root, "main", segment(1, 5)).unlink()
    assert eventually(
        lambda: (
            reg.get_sample_value("seawall_pitr_earliest_timestamp_seconds", CL)
            == t_second.timestamp()
        )
    )
    # the newest base backup's own WAL missing: fall back to the older one
    wal_path(root, "main", segment(1, 8)).unlink()
    write_wal(root, "main", segment(1, 5), mtime=last_mtime - 7)
    assert eventually(
        lambda: reg.get_sample_value("seawall_pitr_latest_timestamp_seconds", CL) == last_mtime - 5
    )
    assert (
        reg.get_sample_value("seawall_pitr_earliest_timestamp_seconds", CL) == t_first.timestamp()
    )
    # no usable base backup at all: no window
    wal_path(root, "main", segment(1, 2)).unlink()
    assert eventually(
        lambda: reg.get_sample_value("seawall_pitr_latest_timestamp_seconds", CL) is None
    )


def test_naive_mode_rescans_each_time(root: Path) -> None:
    watcher = WalWatcher(root, watch=False)
    reg = make_registry(SeawallCollector(root, wal=watcher))
    write_wal(root, "main", segment(1, 1))
    assert reg.get_sample_value("seawall_wal_segments", CL) == 1
    write_wal(root, "main", segment(1, 2))
    assert reg.get_sample_value("seawall_wal_segments", CL) == 2
    assert watcher.rescans == 2


def test_segment_size_from_archive_info(root: Path) -> None:
    """With 64 MiB segments a log holds 64 segments: …3F is followed by the next log's 00."""
    write_archive_info(root, "big", segment_size=64 * 1024 * 1024)
    write_wal(root, "big", "00000001000000000000003F")
    write_wal(root, "big", "000000010000000100000000")
    write_archive_info(root, "small")  # 16 MiB: the same names are 193 segments apart
    write_wal(root, "small", "00000001000000000000003F")
    write_wal(root, "small", "000000010000000100000000")
    watcher = WalWatcher(root, watch=False)
    reg = make_registry(SeawallCollector(root, wal=watcher))
    assert reg.get_sample_value("seawall_wal_gaps", {"cluster": "big"}) == 0
    assert reg.get_sample_value("seawall_wal_gaps", {"cluster": "small"}) == 1
    assert (
        reg.get_sample_value("seawall_wal_missing_segments", {"cluster": "small"}) == 256 - 0x3F - 1
    )
