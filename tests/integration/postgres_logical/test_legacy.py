"""The operators' old plain-SQL dumps (gzip or zstd, optionally ``openssl
enc -aes-256-cbc -pbkdf2``), made with the real CLIs, verify and restore
through ``seawall postgres verify|restore PATH``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, db_state, seawall_env
from tests.support.pgcluster import PgCluster

LEGACY_KEY = "legacy-openssl-key-7"


@pytest.mark.parametrize(
    ("name", "pipeline"),
    [
        ("aidb-full-20250101-020000.sql.gz", "gzip -c"),
        ("aidb-full-20250102-020000.sql.zst", "zstd -q -c"),
        (
            "aidb-full-20250103-020000.sql.gz.enc",
            "gzip -c | openssl enc -aes-256-cbc -pbkdf2 -salt -pass env:LEGACY_KEY",
        ),
    ],
)
def test_legacy_plain_sql_dump_restores(
    pg: PgCluster, backup_dir: Path, tmp_path: Path, name: str, pipeline: str
) -> None:
    pg.psql("CREATE DATABASE aidb")
    pg.psql(SMALL_SQL, "aidb")
    path = tmp_path / name
    subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{pg.bin_dir}/pg_dump -d aidb | {pipeline} > {path}"],
        env={**pg.env(), "LEGACY_KEY": LEGACY_KEY},
        check=True,
    )
    env = seawall_env(pg, backup_dir, ENCRYPTION_KEY=LEGACY_KEY)
    res = run_seawall(["postgres", "verify", str(path)], env)
    assert res.returncode == 0, res.stderr
    assert "plain SQL dump" in res.stdout
    res = run_seawall(["postgres", "restore", str(path), "--target-db", "aidb_restored"], env)
    assert res.returncode == 0, res.stderr
    assert "plain format" in res.stdout
    assert db_state(pg, "aidb_restored") == db_state(pg, "aidb")
    if name.endswith(".enc"):
        res = run_seawall(
            ["postgres", "restore", str(path), "--target-db", "x"],
            seawall_env(pg, backup_dir, ENCRYPTION_KEY="not-the-key"),
        )
        assert res.returncode == 8, res.stderr
        assert pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'x%'") == "0"


def test_broken_plain_dump_leaves_no_database(
    pg: PgCluster, backup_dir: Path, tmp_path: Path
) -> None:
    """psql stops at the first error (with megabytes still to stream): exit 1, the
    error is shown, and neither the target nor the temporary database remains."""
    rows = "".join(f"INSERT INTO t VALUES ({i}, '{'x' * 100}');\n" for i in range(30000))
    sql = "-- PostgreSQL database dump\nCREATE TABLE t (id int, v text);\nSELECT 1 / 0;\n" + rows
    path = tmp_path / "aidb-full-20250104-020000.sql.gz"
    subprocess.run(["gzip", "-c"], input=sql.encode(), stdout=path.open("wb"), check=True)
    res = run_seawall(
        ["postgres", "restore", str(path), "--target-db", "broken"], seawall_env(pg, backup_dir)
    )
    assert res.returncode == 1, res.stderr
    assert "division by zero" in res.stderr
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'broken%'") == "0"
