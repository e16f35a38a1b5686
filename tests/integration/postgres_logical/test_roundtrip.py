"""A rich database survives backup → restore into a new cluster unchanged,
also into a newer PostgreSQL major (15 → 18)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import (
    RICH_SQL,
    db_state,
    manifests,
    seawall_env,
)
from tests.support.pgcluster import PgCluster


def test_rich_database_round_trip_into_new_clusters(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    source = pg_factory(version=15)
    source.psql("CREATE DATABASE shop")
    source.psql(RICH_SQL, "shop")
    expected = db_state(source, "shop")
    assert "100000" in expected["contents"]["app.events"]
    assert expected["large_objects"] and expected["grants"] and expected["triggers"]

    crypt = {
        "ENCRYPTION": "true",
        "ENCRYPTION_RECIPIENTS": public,
        "ENCRYPTION_IDENTITY_FILE": str(key),
    }
    # The source's superuser gets another password: --with-globals must not carry it
    # over to the target (the targets below are still reached with PASSWORD afterwards).
    source_pw = "source-only-pw-9"
    source.psql(f"ALTER ROLE postgres PASSWORD '{source_pw}'")
    res = run_seawall(
        ["postgres", "backup", "--database", "shop"],
        seawall_env(source, backup_dir, PGPASSWORD=source_pw, **crypt),
    )
    assert res.returncode == 0, res.stderr
    [m] = manifests(backup_dir, "shop")
    assert m["status"] == "success" and m["verification"]["ok"] is True
    stats = m["postgres"]["stats"]
    assert stats["tables"]["app.events"]["rows"] == 100000
    assert stats["large_objects"] == 1
    assert stats["sequences"]["app.events_id_seq"] == 123456
    assert {a["role"] for a in m["artifacts"]} == {"dump", "globals"}

    res = run_seawall(
        ["postgres", "verify", "latest", "--deep"],
        seawall_env(source, backup_dir, PGPASSWORD=source_pw, **crypt),
    )
    assert res.returncode == 0, res.stderr
    assert "statistics match" in res.stdout

    for version in (15, 18):
        target = pg_factory(version=version)
        env = seawall_env(target, backup_dir, **crypt)
        res = run_seawall(
            [
                "postgres",
                "restore",
                "latest",
                "--target-db",
                "shop",
                "--with-globals",
                "--jobs",
                "2",
            ],
            env,
        )
        assert res.returncode == 0, f"PG{version}: {res.stderr}"
        got = db_state(target, "shop")
        for key_name in expected:
            assert got[key_name] == expected[key_name], f"PG{version}: {key_name} differs"
        leftovers = target.psql("SELECT datname FROM pg_database WHERE datname LIKE '%seawall%'")
        assert leftovers == ""


def test_pg_dump_must_not_be_older_than_the_server(
    pg_factory: Callable[..., PgCluster], backup_dir: Path
) -> None:
    new = pg_factory(version=18)
    new.psql("CREATE DATABASE app")
    new.psql("CREATE TABLE t AS SELECT generate_series(1, 10) AS x", "app")
    old_tools = seawall_env(new, backup_dir, PG_BIN_DIR="/usr/lib/postgresql/15/bin")
    res = run_seawall(["postgres", "backup", "-d", "app"], old_tools)
    assert res.returncode == 2, res.stderr
    assert "PostgreSQL 18 or newer is needed" in res.stderr and "PG_BIN_DIR" in res.stderr
    [failed] = manifests(backup_dir, "app")
    assert failed["status"] == "failed"
    res = run_seawall(["postgres", "backup", "-d", "app"], seawall_env(new, backup_dir))
    assert res.returncode == 0, res.stderr
    ok = [m for m in manifests(backup_dir, "app") if m["status"] == "success"]
    assert ok and "18." in ok[0]["tool_versions"]["pg_dump"]
