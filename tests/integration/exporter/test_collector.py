"""The collector over real catalogs on disk, read with registry.get_sample_value."""

from __future__ import annotations

import os
import platform
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.registry import CollectorRegistry

from seawall.catalog.locks import series_lock
from seawall.exporter.catalog_cache import CatalogCache
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.retention import Policy
from tests.integration.exporter.builders import (
    T0,
    manifest_path,
    replace_text,
    write_backup,
    write_drill,
)

NOW = (T0 + timedelta(days=1)).timestamp()

# watchdog warns (harmlessly) when a directory is created twice in a race
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def registry_for(root: Path, **kw: object) -> tuple[CollectorRegistry, SeawallCollector]:
    collector = SeawallCollector(root, clock=lambda: NOW, **kw)  # type: ignore[arg-type]
    return make_registry(collector), collector


def pg(name: str, db: str, typ: str = "full") -> dict[str, str]:
    return {"database": db, "type": typ}


def series(engine: str, kind: str, name: str, **extra: str) -> dict[str, str]:
    return {"engine": engine, "kind": kind, "series": name, **extra}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def test_compatible_and_series_metrics(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0, size=2000, verified=True)
    newest_ok = write_backup(
        root,
        "postgresql",
        "logical",
        "app",
        finished=T0 + timedelta(hours=6),
        size=3000,
        duration=42.0,
        verified=False,
    )
    failed = write_backup(
        root,
        "postgresql",
        "logical",
        "app",
        finished=T0 + timedelta(hours=12),
        status="failed",
        duration=7.0,
    )
    write_backup(root, "postgresql", "logical", "billing", finished=T0, size=500)
    snap = write_backup(root, "qdrant", "snapshot", "docs", finished=T0, size=777, duration=12.5)
    reg, _ = registry_for(root)

    assert (
        reg.get_sample_value("postgres_backup_last_success_timestamp", pg("", "app"))
        == newest_ok.finished_at.timestamp()
    )  # type: ignore[union-attr]
    assert reg.get_sample_value("postgres_backup_size_bytes", pg("", "app")) == 3000
    # the last run failed: status 0 and the failed run's duration
    assert reg.get_sample_value("postgres_backup_status", pg("", "app")) == 0
    assert reg.get_sample_value("postgres_backup_duration_seconds", pg("", "app")) == 7.0
    assert reg.get_sample_value("postgres_backup_status", pg("", "billing")) == 1
    assert reg.get_sample_value("qdrant_backup_size_bytes", {"collection": "docs"}) == 777
    assert reg.get_sample_value("qdrant_backup_status", {"collection": "docs"}) == 1
    assert reg.get_sample_value("qdrant_backup_duration_seconds", {"collection": "docs"}) == 12.5
    assert (
        reg.get_sample_value("qdrant_backup_last_success_timestamp", {"collection": "docs"})
        == snap.finished_at.timestamp()
    )  # type: ignore[union-attr]

    app = series("postgresql", "logical", "app")
    assert reg.get_sample_value("seawall_backup_runs", {**app, "result": "success"}) == 2
    assert reg.get_sample_value("seawall_backup_runs", {**app, "result": "failed"}) == 1
    assert reg.get_sample_value("seawall_backups", app) == 2
    assert reg.get_sample_value("seawall_backup_stored_bytes", app) == 5000
    assert reg.get_sample_value("seawall_backup_last_run_success", app) == 0
    assert (
        reg.get_sample_value("seawall_backup_last_run_timestamp_seconds", app)
        == failed.finished_at.timestamp()
    )  # type: ignore[union-attr]
    # the most recent verification (of the 6h backup) failed
    assert reg.get_sample_value("seawall_backup_last_verification_success", app) == 0
    assert (
        reg.get_sample_value("seawall_backup_last_verification_timestamp_seconds", app)
        == newest_ok.verification.at.timestamp()
    )  # type: ignore[union-attr]
    # billing was never verified: no verification metric at all
    billing = series("postgresql", "logical", "billing")
    assert (
        reg.get_sample_value("seawall_backup_last_verification_timestamp_seconds", billing) is None
    )
    assert reg.get_sample_value("seawall_catalog_manifests") == 5
    assert reg.get_sample_value("seawall_catalog_errors") == 0
    assert reg.get_sample_value("seawall_backup_dir_accessible") == 1
    assert (
        reg.get_sample_value(
            "seawall_build_info", {"version": "0.1.0", "python": platform.python_version()}
        )
        == 1
    )
    assert reg.get_sample_value("seawall_scrape_duration_seconds") is not None


def test_retention_tiers(root: Path) -> None:
    for day in range(10):
        write_backup(root, "postgresql", "logical", "app", finished=T0 - timedelta(days=day))
    policy = Policy(daily=7, weekly=2, monthly=1)
    reg, _ = registry_for(root, policy_for=lambda e, k, s: policy)
    app = series("postgresql", "logical", "app")
    assert reg.get_sample_value("seawall_backups", app) == 10
    assert reg.get_sample_value("seawall_backups_by_tier", {**app, "tier": "daily"}) == 7
    assert reg.get_sample_value("seawall_backups_by_tier", {**app, "tier": "weekly"}) == 2
    assert reg.get_sample_value("seawall_backups_by_tier", {**app, "tier": "monthly"}) == 1
    assert reg.get_sample_value("seawall_backups_by_tier", {**app, "tier": "yearly"}) == 0


def test_pinned_backups_counted_per_series_and_pins_expire(root: Path) -> None:
    """seawall_backups_pinned: a count per series (no backup id label); a pin
    with an end stops counting when the clock passes it."""
    from seawall.catalog.models import Pin
    from seawall.catalog.store import Catalog
    from seawall.storage.local import LocalStorage

    catalog = Catalog(LocalStorage(root))
    a = write_backup(root, "postgresql", "logical", "app", finished=T0 - timedelta(days=3))
    b = write_backup(root, "postgresql", "logical", "app", finished=T0 - timedelta(days=2))
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    write_backup(root, "qdrant", "snapshot", "docs", finished=T0)
    a.pin = Pin(at=T0, note="pre-migration")
    b.pin = Pin(at=T0, until=T0 + timedelta(days=1, hours=1))
    catalog.write(a)
    catalog.write(b)
    now = [NOW]
    collector = SeawallCollector(root, clock=lambda: now[0])
    reg = make_registry(collector)
    app = series("postgresql", "logical", "app")
    assert reg.get_sample_value("seawall_backups_pinned", app) == 2
    assert reg.get_sample_value("seawall_backups_pinned", series("qdrant", "snapshot", "docs")) == 0
    now[0] = NOW + 2 * 3600  # b's pin ended an hour ago
    assert reg.get_sample_value("seawall_backups_pinned", app) == 1
    names = {s.name for fam in reg.collect() for s in fam.samples}
    labels = {k for fam in reg.collect() for s in fam.samples for k in s.labels}
    assert "seawall_backups_pinned" in names and "id" not in labels


def test_storage_metrics(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    reg, _ = registry_for(root)
    # one scrape (other processes write to this disk between scrapes)
    values = {s.name: s.value for fam in reg.collect() for s in fam.samples if not s.labels}
    du = shutil.disk_usage(root)
    assert values["seawall_storage_size_bytes"] == du.total
    used, free = values["seawall_storage_used_bytes"], values["seawall_storage_free_bytes"]
    assert abs(used - du.used) < du.total * 0.05
    assert values["seawall_storage_used_ratio"] == used / (used + free)
    assert 0 < values["seawall_storage_used_ratio"] < 1


def test_corrupt_foreign_and_unreadable_manifests_are_counted_and_skipped(root: Path) -> None:
    good = write_backup(root, "postgresql", "logical", "app", finished=T0)
    corrupt = write_backup(root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=1))
    manifest_path(root, corrupt).write_text('{"format_version": 1, "id": ')
    foreign = write_backup(root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=2))
    manifest_path(root, foreign).write_text('{"kind": "something else entirely"}')
    moved = write_backup(root, "postgresql", "logical", "other", finished=T0 + timedelta(hours=3))
    # a manifest copied into another series' directory describes another backup
    stray = manifest_path(root, good).parent.parent / "20261120T050000Z-abcd"
    stray.mkdir()
    shutil.copy(manifest_path(root, moved), stray / "manifest.json")
    # unreadable: a directory where the manifest should be, and a symlink loop
    unreadable = write_backup(root, "qdrant", "snapshot", "docs", finished=T0)
    manifest_path(root, unreadable).unlink()
    manifest_path(root, unreadable).mkdir()
    loop = root / "qdrant/snapshot/docs/20261120T060000Z-0000"
    loop.mkdir()
    os.symlink("manifest.json", loop / "manifest.json")
    newer = write_backup(
        root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=4), status="failed"
    )
    # a newer format from a future seawall
    future = write_backup(root, "postgresql", "logical", "billing", finished=T0)
    p = manifest_path(root, future)
    p.write_text(p.read_text().replace('"format_version": 1', '"format_version": 99'))

    reg, _ = registry_for(root)
    assert reg.get_sample_value("seawall_catalog_errors") == 6
    app = series("postgresql", "logical", "app")
    assert reg.get_sample_value("seawall_backup_runs", {**app, "result": "success"}) == 1
    assert reg.get_sample_value("seawall_backup_runs", {**app, "result": "failed"}) == 1
    assert reg.get_sample_value("postgres_backup_status", pg("", "app")) == 0
    assert (
        reg.get_sample_value("postgres_backup_last_success_timestamp", pg("", "app"))
        == good.finished_at.timestamp()
    )  # type: ignore[union-attr]
    assert reg.get_sample_value("postgres_backup_status", pg("", "other")) == 1
    assert reg.get_sample_value("qdrant_backup_status", {"collection": "docs"}) is None
    assert reg.get_sample_value("postgres_backup_status", pg("", "billing")) is None
    assert newer.status == "failed"


def test_missing_backup_dir_then_created(root: Path) -> None:
    reg, _ = registry_for(root)
    assert reg.get_sample_value("seawall_backup_dir_accessible") == 0
    assert reg.get_sample_value("seawall_catalog_manifests") == 0
    assert reg.get_sample_value("seawall_storage_used_bytes") is None
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    assert reg.get_sample_value("seawall_backup_dir_accessible") == 1
    assert reg.get_sample_value("postgres_backup_status", pg("", "app")) == 1
    shutil.rmtree(root)
    assert reg.get_sample_value("seawall_backup_dir_accessible") == 0
    assert reg.get_sample_value("postgres_backup_status", pg("", "app")) is None


def test_removed_series_disappears_and_cache_skips_unchanged(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    gone = write_backup(root, "postgresql", "logical", "old", finished=T0)
    write_backup(root, "qdrant", "snapshot", "docs", finished=T0)
    cache = CatalogCache(root)
    reg, _ = registry_for(root, catalog=cache)
    assert reg.get_sample_value("postgres_backup_status", pg("", "old")) == 1
    assert cache.parsed == 3
    assert reg.get_sample_value("postgres_backup_status", pg("", "app")) == 1
    assert cache.parsed == 3  # second scrape: nothing re-parsed
    shutil.rmtree(manifest_path(root, gone).parent.parent)
    shutil.rmtree(root / "qdrant/snapshot/docs")
    assert reg.get_sample_value("postgres_backup_status", pg("", "old")) is None
    assert reg.get_sample_value("seawall_backups", series("postgresql", "logical", "old")) is None
    assert reg.get_sample_value("qdrant_backup_status", {"collection": "docs"}) is None
    assert reg.get_sample_value("postgres_backup_status", pg("", "app")) == 1
    # a manifest rewritten in place (verification written back) is re-read
    m = write_backup(root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=1))
    before = cache.parsed
    assert reg.get_sample_value("seawall_backups", series("postgresql", "logical", "app")) == 2
    assert cache.parsed == before + 1
    p = manifest_path(root, m)
    replace_text(p, p.read_text().replace('"status": "success"', '"status": "failed"'))
    assert reg.get_sample_value("seawall_backups", series("postgresql", "logical", "app")) == 1
    assert cache.parsed == before + 2


def test_manifest_edited_in_place_is_seen_at_the_full_check(root: Path) -> None:
    m = write_backup(root, "postgresql", "logical", "app", finished=T0)
    cache = CatalogCache(root, full_check_interval=0)
    reg, _ = registry_for(root, catalog=cache)
    app = series("postgresql", "logical", "app")
    assert reg.get_sample_value("seawall_backups", app) == 1
    p = manifest_path(root, m)
    text = p.read_text().replace('"status": "success"', '"status": "failed"')
    with open(p, "r+") as fh:  # in place: the directory's mtime does not change
        fh.write(text)
        fh.truncate()
    assert reg.get_sample_value("seawall_backups", app) == 0
    assert reg.get_sample_value("seawall_backup_runs", {**app, "result": "failed"}) == 1


def test_naive_mode_parses_every_time(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    cache = CatalogCache(root, enabled=False)
    reg, _ = registry_for(root, catalog=cache, memo=False)
    for _ in range(3):
        assert reg.get_sample_value("postgres_backup_status", pg("", "app")) == 1
    assert cache.parsed == 3


def test_running_job_from_series_lock(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    reg, _ = registry_for(root)
    app = series("postgresql", "logical", "app")
    assert reg.get_sample_value("seawall_backup_running_start_timestamp_seconds", app) is None
    with series_lock(root, "postgresql", "logical", "app", timeout=1, command="test"):
        started = reg.get_sample_value("seawall_backup_running_start_timestamp_seconds", app)
        assert started is not None and abs(started - __import__("time").time()) < 30
    assert reg.get_sample_value("seawall_backup_running_start_timestamp_seconds", app) is None


def test_drills(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    reg, _ = registry_for(root)
    labels = {"engine": "postgresql", "series": "app"}
    assert reg.get_sample_value("seawall_drill_last_timestamp_seconds", labels) is None
    write_drill(root, "postgresql", "app", finished=T0, ok=True, rto=300.0, rpo=60.0)
    last = write_drill(
        root, "postgresql", "app", finished=T0 + timedelta(days=7), ok=False, rto=None, rpo=None
    )
    assert reg.get_sample_value("seawall_drill_last_success", labels) == 0
    assert (
        reg.get_sample_value("seawall_drill_last_timestamp_seconds", labels)
        == (T0 + timedelta(days=7)).timestamp()
    )
    assert (
        reg.get_sample_value("seawall_drill_last_success_timestamp_seconds", labels)
        == T0.timestamp()
    )
    assert reg.get_sample_value("seawall_drill_rto_seconds", labels) == 300.0
    assert reg.get_sample_value("seawall_drill_rpo_seconds", labels) == 60.0
    replace_text(last, "garbage")
    assert reg.get_sample_value("seawall_drill_last_success", labels) == 1
    assert reg.get_sample_value("seawall_catalog_errors") == 1


def test_watched_catalog_sees_changes_through_events(root: Path) -> None:
    """With the observer, unchanged series are not listed; events mark the changed ones."""
    import time as _time

    write_backup(root, "postgresql", "logical", "app", finished=T0)
    write_backup(root, "postgresql", "logical", "old", finished=T0)
    cache = CatalogCache(root, watch=True, full_check_interval=3600)
    try:
        reg, _ = registry_for(root, catalog=cache)
        app = series("postgresql", "logical", "app")

        def eventually(name: str, labels: dict[str, str], value: float | None) -> None:
            deadline = _time.monotonic() + 5
            while _time.monotonic() < deadline:
                if reg.get_sample_value(name, labels) == value:
                    return
                _time.sleep(0.05)
            assert reg.get_sample_value(name, labels) == value

        assert reg.get_sample_value("seawall_backups", app) == 1
        parsed = cache.parsed
        for _ in range(3):
            assert reg.get_sample_value("seawall_backups", app) == 1
        assert cache.parsed == parsed
        m = write_backup(root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=1))
        eventually("seawall_backups", app, 2)
        # verification written back into the manifest (atomic replace) is seen
        p = manifest_path(root, m)
        replace_text(p, p.read_text().replace('"status": "success"', '"status": "failed"'))
        eventually("seawall_backup_last_run_success", app, 0)
        shutil.rmtree(root / "postgresql/logical/old")
        eventually("seawall_backups", series("postgresql", "logical", "old"), None)
        write_backup(root, "qdrant", "snapshot", "docs", finished=T0)
        eventually("qdrant_backup_status", {"collection": "docs"}, 1)
        # an in-place edit changes no directory, but closing the file is an event
        p = manifest_path(root, m)
        text = p.read_text().replace('"status": "failed"', '"status": "success"')
        with open(p, "r+") as fh:
            fh.write(text)
            fh.truncate()
        eventually("seawall_backup_last_run_success", app, 1)
        # a change without any event we listen to (here: only the mtime) is
        # found by the periodic full check, which runs in the background
        _time.sleep(0.3)
        assert reg.get_sample_value("seawall_backup_last_run_success", app) == 1
        parsed = cache.parsed
        os.utime(p, ns=(0, 10**18))
        assert reg.get_sample_value("seawall_backups", app) == 2
        assert cache.parsed == parsed, "no event: not re-read before the full check"
        assert cache.check_all() == 1
        assert reg.get_sample_value("seawall_backups", app) == 2
        assert cache.parsed == parsed + 1
        assert cache.check_all() == 0
    finally:
        cache.stop()


def test_watched_catalog_new_engine_and_kind_after_start(root: Path) -> None:
    """Watches are per engine/kind: a kind created later is picked up too."""
    import time as _time

    root.mkdir()
    cache = CatalogCache(root, watch=True, full_check_interval=3600)
    cache.start()
    try:
        reg, _ = registry_for(root, catalog=cache)
        assert reg.get_sample_value("seawall_catalog_manifests") == 0
        write_backup(root, "postgresql", "base", "main", finished=T0)
        write_backup(root, "qdrant", "snapshot", "docs", finished=T0)
        assert reg.get_sample_value("postgres_backup_status", pg("", "main", "base")) == 1
        _time.sleep(0.3)
        assert reg.get_sample_value("postgres_backup_status", pg("", "main", "base")) == 1
        # after the restart caused by the new directories, later changes come as events
        m = write_backup(
            root, "postgresql", "base", "main", finished=T0 + timedelta(hours=1), status="failed"
        )
        deadline = _time.monotonic() + 5
        while _time.monotonic() < deadline:
            if reg.get_sample_value("postgres_backup_status", pg("", "main", "base")) == 0:
                break
            _time.sleep(0.05)
        assert reg.get_sample_value("postgres_backup_status", pg("", "main", "base")) == 0
        assert m.status == "failed"
        assert cache._observer is not None
    finally:
        cache.stop()


def test_odd_files_anywhere_never_break_the_scrape(root: Path) -> None:
    good = write_backup(root, "postgresql", "logical", "app", finished=T0)
    (root / "qdrant").write_text("a file where a directory belongs")
    (root / "postgresql" / "notes.txt").write_text("x")
    (root / "postgresql" / "logical" / "README").write_text("x")
    (root / "postgresql" / "logical" / "app" / "not-a-backup-id").mkdir()
    (root / "drills").mkdir()
    (root / "drills" / "postgresql").write_text("x")
    fifo_dir = root / "postgresql/logical/app/20261120T070000Z-0001"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "manifest.json")  # reading it would block forever
    zero_dir = root / "postgresql/logical/app/20261120T070000Z-0002"
    zero_dir.mkdir()
    os.symlink("/dev/zero", zero_dir / "manifest.json")
    reg, _ = registry_for(root)
    assert reg.get_sample_value("postgres_backup_status", pg("", "app")) == 1
    assert reg.get_sample_value("seawall_catalog_errors") == 2
    assert reg.get_sample_value("seawall_catalog_manifests") == 1
    assert good.ok


def test_postgres_type_label_is_full_for_pg_dump(root: Path) -> None:
    """The operators' `postgres_backup_status{type="full"} == 0` matches a failed pg_dump."""
    write_backup(root, "postgresql", "logical", "aidb", finished=T0, size=10)
    write_backup(
        root, "postgresql", "logical", "aidb", finished=T0 + timedelta(hours=1), status="failed"
    )
    write_backup(root, "postgresql", "base", "main", finished=T0, size=20)
    reg, _ = registry_for(root)
    full = {"database": "aidb", "type": "full"}
    assert reg.get_sample_value("postgres_backup_status", full) == 0
    assert reg.get_sample_value("postgres_backup_size_bytes", full) == 10
    assert reg.get_sample_value("postgres_backup_status", {"database": "main", "type": "base"}) == 1
    types = {
        s.labels["type"]
        for family in reg.collect()
        if family.name.startswith("postgres_backup")
        for s in family.samples
    }
    assert types == {"full", "base"}, 'no sample keeps the old type="logical"'


def test_verification_level_of_the_most_recent_verification(root: Path) -> None:
    """seawall_backup_last_verification_level: 1 stored, 2 decoded, 3 deep, of the
    same verification as seawall_backup_last_verification_success; manifests
    written before levels existed read as deep/decoded from their `deep` flag.
    seawall_backup_last_decoded_verification_timestamp_seconds skips stored-level
    checks (SeawallVerificationOverdue's age reads it)."""
    from seawall.catalog.models import Verification
    from seawall.catalog.store import Catalog
    from seawall.storage.local import LocalStorage

    catalog = Catalog(LocalStorage(root))

    def verified(
        series_name: str, at_hours: float, level: str | None, deep: bool, ok: bool = True
    ) -> None:
        m = write_backup(root, "postgresql", "logical", series_name, finished=T0)
        m.verification = Verification(
            at=T0 + timedelta(hours=at_hours),
            ok=ok,
            deep=deep,
            level=level,  # type: ignore[arg-type]
            duration_seconds=1.0,
            message="ok",
        )
        catalog.write(m)

    verified("stored", 1, "stored", False)
    verified("decoded", 1, "decoded", False)
    verified("deep", 1, "deep", True)
    verified("legacy_deep", 1, None, True)
    verified("legacy", 1, None, False)
    # a deep verification of an older backup, then the stored-level check of the
    # newer one: the most recent (stored) is what the level reports
    verified("mixed", 1, "deep", True)
    verified("mixed", 2, "stored", False)
    # the weekly decoding verification failed; the stored check of a newer backup passed
    verified("undecodable", 1, "decoded", False, ok=False)
    verified("undecodable", 2, "stored", False)
    write_backup(root, "postgresql", "logical", "never", finished=T0)
    reg, _ = registry_for(root)

    def level(name: str) -> float | None:
        return reg.get_sample_value(
            "seawall_backup_last_verification_level", series("postgresql", "logical", name)
        )

    assert [level(n) for n in ("stored", "decoded", "deep", "legacy_deep", "legacy")] == [
        1,
        2,
        3,
        3,
        2,
    ]
    assert level("mixed") == 1
    assert level("never") is None

    def decoded_at(name: str) -> float | None:
        return reg.get_sample_value(
            "seawall_backup_last_decoded_verification_timestamp_seconds",
            series("postgresql", "logical", name),
        )

    # the newest verification that decrypted: mixed's deep one, not the later stored one
    assert decoded_at("mixed") == (T0 + timedelta(hours=1)).timestamp()
    assert decoded_at("decoded") == decoded_at("legacy") == (T0 + timedelta(hours=1)).timestamp()
    assert decoded_at("stored") is None and decoded_at("never") is None

    def ok(metric: str, name: str) -> float | None:
        return reg.get_sample_value(metric, series("postgresql", "logical", name))

    assert ok("seawall_backup_last_verification_success", "undecodable") == 1
    assert ok("seawall_backup_last_decoded_verification_success", "undecodable") == 0
    assert ok("seawall_backup_last_decoded_verification_success", "mixed") == 1
    assert ok("seawall_backup_last_decoded_verification_success", "stored") is None
