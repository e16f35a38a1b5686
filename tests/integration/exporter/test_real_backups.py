"""The collector over a catalog written by the real runner (`seawall postgres backup`)."""

from __future__ import annotations

from pathlib import Path

from seawall.catalog.store import Catalog
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.retention import Policy
from seawall.storage.local import LocalStorage
from tests.conftest import run_seawall
from tests.support.pgcluster import PgCluster


def test_metrics_from_real_logical_backups(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g", "app"
    )
    env = pg.env(BACKUP_DIR=str(backup_dir), PRUNE_AFTER_BACKUP="false")
    for _ in range(2):
        res = run_seawall(["postgres", "backup", "-d", "app"], env)
        assert res.returncode == 0, res.stderr

    manifests = Catalog(LocalStorage(backup_dir)).scan("postgresql", "logical", "app").manifests
    assert len(manifests) == 2
    newest = manifests[0]
    reg = make_registry(
        SeawallCollector(backup_dir, policy_for=lambda e, k, s: Policy(daily=7, weekly=4))
    )
    db = {"database": "app", "type": "full"}
    app = {"engine": "postgresql", "kind": "logical", "series": "app"}
    assert reg.get_sample_value("postgres_backup_status", db) == 1
    assert reg.get_sample_value("postgres_backup_size_bytes", db) == newest.stored_size > 0
    assert (
        reg.get_sample_value("postgres_backup_last_success_timestamp", db)
        == newest.finished_at.timestamp()
    )  # type: ignore[union-attr]
    assert reg.get_sample_value("postgres_backup_duration_seconds", db) == newest.duration_seconds
    assert reg.get_sample_value("seawall_backup_runs", {**app, "result": "success"}) == 2
    assert reg.get_sample_value("seawall_backups", app) == 2
    # both on the same day: one daily and one weekly slot are filled
    assert reg.get_sample_value("seawall_backups_by_tier", {**app, "tier": "daily"}) == 1
    if newest.verification is not None:
        assert reg.get_sample_value("seawall_backup_last_verification_success", app) == (
            1 if newest.verification.ok else 0
        )
        # not encrypted: the verification right after the backup decoded it
        assert newest.verification.level == "decoded"
        assert reg.get_sample_value("seawall_backup_last_verification_level", app) == 2
    assert reg.get_sample_value("seawall_catalog_errors") == 0

    # the database goes away: the next run fails, and the exporter says so
    pg.stop()
    res = run_seawall(["postgres", "backup", "-d", "app"], env)
    assert res.returncode == 5, res.stderr  # SourceUnavailableError (docs/exit-codes.md)
    failed = [m for m in Catalog(LocalStorage(backup_dir)).scan().manifests if m.status == "failed"]
    assert len(failed) == 1, "the runner records failed runs in the catalog"
    assert reg.get_sample_value("postgres_backup_status", db) == 0
    assert reg.get_sample_value("seawall_backup_runs", {**app, "result": "failed"}) == 1
    assert reg.get_sample_value("seawall_backup_last_run_success", app) == 0
    # the last success is still the newest successful backup
    assert (
        reg.get_sample_value("postgres_backup_last_success_timestamp", db)
        == newest.finished_at.timestamp()
    )  # type: ignore[union-attr]
