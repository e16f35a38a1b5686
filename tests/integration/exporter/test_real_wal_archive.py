"""The WAL watcher and the PITR window over an archive written by the real
``seawall postgres wal-push`` (archive_command) and ``basebackup``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.catalog.store import Catalog
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.wal_watch import WalWatcher
from seawall.storage.local import LocalStorage
from tests.integration.wal.helpers import make_archived
from tests.support.pgcluster import PgCluster

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
CL = {"cluster": "main"}


def test_real_archive_segments_gaps_and_pitr_window(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    watcher = WalWatcher(backup_dir, rescan_interval=3600)
    watcher.start()
    try:
        reg = make_registry(SeawallCollector(backup_dir, wal=watcher))
        first = reg.get_sample_value("seawall_wal_segments", CL)
        assert first is not None and first >= 1
        rescans = watcher.rescans
        data = arch.basebackup()  # also prunes WAL older than the base backup
        assert data
        for i in range(3):
            arch.pg.psql(f"CREATE TABLE t{i} AS SELECT generate_series(1, 1000) AS id")
            last = arch.switch_and_wait()
        archive = backup_dir / "postgresql" / "wal" / "main"

        def on_disk() -> int:
            return sum(1 for p in archive.glob("*/*") if len(p.name.split("-")[0]) == 24)

        def segments() -> float | None:
            return reg.get_sample_value("seawall_wal_segments", CL)

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and segments() != on_disk():
            time.sleep(0.1)
        assert segments() == on_disk() >= 4
        assert watcher.rescans == rescans, "new segments must come from events, not a rescan"
        assert reg.get_sample_value("seawall_wal_gaps", CL) == 0
        age = reg.get_sample_value("seawall_wal_newest_segment_age_seconds", CL)
        assert age is not None and age < 120

        base = Catalog(LocalStorage(backup_dir)).find("latest", "postgresql", "base", "main")
        earliest = reg.get_sample_value("seawall_pitr_earliest_timestamp_seconds", CL)
        latest = reg.get_sample_value("seawall_pitr_latest_timestamp_seconds", CL)
        assert earliest == base.finished_at.timestamp()  # type: ignore[union-attr]
        assert latest is not None and latest >= int(base.finished_at.timestamp())  # type: ignore[union-attr]
        assert (
            reg.get_sample_value("postgres_backup_status", {"database": "main", "type": "base"})
            == 1
        )
        # the archive is a postgres_backup_* series of its own, type="wal"
        wal = {"database": "main", "type": "wal"}
        assert reg.get_sample_value("postgres_backup_last_success_timestamp", wal) == (
            reg.get_sample_value("seawall_wal_last_archived_timestamp_seconds", CL)
        )
        assert reg.get_sample_value("postgres_backup_size_bytes", wal) == (
            reg.get_sample_value("seawall_wal_archive_bytes", CL)
        )
        assert reg.get_sample_value("postgres_backup_status", wal) is None

        # a segment deleted after the base backup: a gap, and the window is gone
        # (the only base backup can no longer reach the newest WAL)
        stop = base.postgres.stop_wal  # type: ignore[union-attr]
        files = sorted(p for p in archive.glob("*/*") if p.name[:24] > stop and p.name[:24] < last)
        assert files, "expected a segment between the base backup and the last switch"
        files[0].unlink()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and reg.get_sample_value("seawall_wal_gaps", CL) != 1:
            time.sleep(0.1)
        assert reg.get_sample_value("seawall_wal_gaps", CL) == 1
        latest_after = reg.get_sample_value("seawall_pitr_latest_timestamp_seconds", CL)
        assert latest_after is not None and latest_after <= latest
    finally:
        watcher.stop()
