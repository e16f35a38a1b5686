"""A least-privilege backup role (SELECT grants only, not superuser, not
pg_read_all_data, which can read pg_authid) can back up: role passwords are left out of the globals, and said so; a deep verify
without CREATEDB fails with a clear message, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, manifests, seawall_env
from tests.support.pgcluster import PASSWORD, PgCluster


def test_backup_as_non_superuser(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    pg.psql(f"CREATE ROLE backup LOGIN PASSWORD '{PASSWORD}'")
    lo = pg.psql("SELECT oid FROM pg_largeobject_metadata", "items")
    pg.psql(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO backup;"
        "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO backup;"
        f"GRANT SELECT ON LARGE OBJECT {lo} TO backup",
        "items",
    )
    env = seawall_env(pg, backup_dir, PGUSER="backup")
    res = run_seawall(["postgres", "backup", "-d", "items"], env)
    assert res.returncode == 0, res.stderr
    assert "without passwords" in res.stderr
    [m] = manifests(backup_dir, "items")
    assert m["labels"]["globals"] == "no-role-passwords"
    assert m["postgres"]["stats"]["tables"]["public.items"]["rows"] == 3000
    assert m["postgres"]["stats"]["large_objects"] == 1

    res = run_seawall(["postgres", "verify", "latest", "--deep"], env)
    assert res.returncode == 1, res.stderr
    assert "permission denied to create database" in res.stderr and "CREATEDB" in res.stderr
    assert "Traceback" not in res.stderr
    # a failed attempt to verify is not a verdict on the backup
    [m] = manifests(backup_dir, "items")
    assert m["verification"]["ok"] is True and m["verification"]["deep"] is False
    assert json.loads(run_seawall(["postgres", "list", "--json"], env).stdout)[0]["verified"]
