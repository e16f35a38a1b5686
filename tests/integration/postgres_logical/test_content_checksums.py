"""CONTENT_CHECKSUMS=false: exact row counts only, and --deep still compares them."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PgCluster


def test_counts_only_statistics_still_verify(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 5000) g", "app")
    env = seawall_env(pg, backup_dir, DB_NAME="app", CONTENT_CHECKSUMS="false")
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    [m] = manifests(backup_dir, "app")
    table = m["postgres"]["stats"]["tables"]["public.t"]
    assert table == {"rows": 5000, "checksum": None, "columns": None}
    res = run_seawall(["postgres", "verify", "latest", "--deep", "--database", "app"], env)
    assert res.returncode == 0, res.stderr
    # With checksums on (the default) the manifest carries one.
    res = run_seawall(["postgres", "backup"], seawall_env(pg, backup_dir, DB_NAME="app"))
    assert res.returncode == 0, res.stderr
    [newest] = [x for x in manifests(backup_dir, "app") if x["id"] != m["id"]]
    assert newest["postgres"]["stats"]["tables"]["public.t"]["checksum"] is not None
