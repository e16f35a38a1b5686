"""The logical-backup commands as an operator uses them: list, verify,
restore (refusal without --clean, atomic swap with it), JSON output, several
databases in one run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, db_state, manifests, seawall_env
from tests.support.pgcluster import PgCluster


def test_backup_list_verify_restore_cli(
    pg: PgCluster, backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    for db in ("alpha", "beta"):
        pg.psql(f"CREATE DATABASE {db}")
        pg.psql(SMALL_SQL, db)
    env = seawall_env(
        pg, backup_dir, ENCRYPTION="true", ENCRYPTION_RECIPIENTS=public,
        ENCRYPTION_IDENTITY_FILE=str(key), DATABASES="alpha,beta",
    )  # fmt: skip
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    assert "alpha: backup" in res.stdout and "beta: backup" in res.stdout
    res = run_seawall(["postgres", "backup", "--database", "alpha", "--json", "--no-verify"], env)
    assert res.returncode == 0, res.stderr
    [made] = json.loads(res.stdout)
    assert made["series"] == "alpha" and made["verification"] is None

    res = run_seawall(["postgres", "list"], env)
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "DATABASE", "TYPE"]
    assert lines[1].split()[0] == made["id"]  # newest first
    rows = json.loads(run_seawall(["postgres", "list", "--json"], env).stdout)
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)
    assert {r["database"] for r in rows} == {"alpha", "beta"}
    assert all(r["encrypted"] and r["compression"] == "zstd" for r in rows)
    newest_alpha = next(r for r in rows if r["database"] == "alpha")
    assert newest_alpha["verified"] is None and "daily" in newest_alpha["tiers"]
    older_alpha = [r for r in rows if r["database"] == "alpha"][1]
    assert older_alpha["verified"] is True and older_alpha["tiers"] == []

    # latest needs --database when several series exist
    res = run_seawall(["postgres", "verify", "latest"], env)
    assert res.returncode == 2 and "--database" in res.stderr
    res = run_seawall(["postgres", "verify", "latest", "-d", "alpha", "--deep", "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["deep"]
    [m] = [m for m in manifests(backup_dir, "alpha") if m["id"] == made["id"]]
    assert m["verification"]["ok"] and m["verification"]["deep"]
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'seawall_%'") == "0"

    # restore into a new database, refuse to overwrite, replace with --clean
    res = run_seawall(["postgres", "restore", "latest", "-d", "beta", "--target-db", "gamma"], env)
    assert res.returncode == 0, res.stderr
    assert db_state(pg, "gamma")["contents"] == db_state(pg, "beta")["contents"]
    res = run_seawall(["postgres", "restore", "latest", "-d", "alpha", "--target-db", "gamma"], env)
    assert res.returncode == 9 and "--clean" in res.stderr
    pg.psql("CREATE TABLE marker (x int)", "gamma")
    res = run_seawall(
        ["postgres", "restore", made["id"], "--target-db", "gamma", "--clean", "--jobs", "2"], env
    )
    assert res.returncode == 0, res.stderr
    assert "replaced" in res.stdout
    assert pg.psql("SELECT to_regclass('public.marker') IS NULL", "gamma") == "t"
    assert db_state(pg, "gamma")["contents"] == db_state(pg, "alpha")["contents"]
    dbs = pg.psql("SELECT datname FROM pg_database ORDER BY 1").split()
    assert not [d for d in dbs if "seawall" in d], dbs

    # a failing restore (no key) leaves the existing target untouched
    no_key = seawall_env(pg, backup_dir)
    res = run_seawall(
        ["postgres", "restore", made["id"], "--target-db", "gamma", "--clean"], no_key
    )
    assert res.returncode == 8
    assert db_state(pg, "gamma")["contents"] == db_state(pg, "alpha")["contents"]

    # the backup directory given as a PATH works too (a copy fetched from elsewhere)
    folder = backup_dir / "postgresql" / "logical" / "beta"
    [bdir] = list(folder.iterdir())
    res = run_seawall(["--quiet", "postgres", "verify", str(bdir)], env)
    assert res.returncode == 0 and res.stdout == ""


def test_partial_failure_and_help(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE good")
    env = seawall_env(pg, backup_dir)
    res = run_seawall(["postgres", "backup", "-d", "good", "-d", "missing_db"], env)
    assert res.returncode == 10, res.stderr
    assert "missing_db" in res.stderr
    assert [m["status"] for m in manifests(backup_dir, "good")] == ["success"]
    # never backed up and does not exist: a rejected run, not a failing series (ADR 0010)
    assert manifests(backup_dir, "missing_db") == []
    [rejected] = (backup_dir / "rejected/postgresql/logical/missing_db").glob("*/manifest.json")
    assert json.loads(rejected.read_text())["status"] == "failed"
    # any database name works end to end (quotes, "=", which libpq could read as conninfo)
    odd = "we=ird'n\"ame"
    pg.psql(f'CREATE DATABASE "{odd.replace(chr(34), chr(34) * 2)}"')
    res = run_seawall(["postgres", "backup", "-d", odd], env)
    assert res.returncode == 0, res.stderr
    res = run_seawall(["postgres", "restore", "latest", "-d", odd, "--target-db", "x=y'z"], env)
    assert res.returncode == 0, res.stderr
    assert "x=y'z" in pg.psql("SELECT datname FROM pg_database").splitlines()
    res = run_seawall(["postgres", "restore", "--help"], env)
    assert (
        res.returncode == 0
        and "Exit codes" in res.stdout
        and "without --clean" in res.stdout
        and "--clean" in res.stdout
    )


def test_retention_runs_after_backup(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE kept")
    env = {
        **seawall_env(pg, backup_dir),
        "PRUNE_AFTER_BACKUP": "true",
        "RETENTION_LAST": "2",
        "RETENTION_DAYS": "0",
        "RETENTION_WEEKS": "0",
        "RETENTION_MONTHS": "0",
    }
    for _ in range(3):
        assert run_seawall(["postgres", "backup", "-d", "kept"], env).returncode == 0
    rows = json.loads(run_seawall(["postgres", "list", "--json"], env).stdout)
    assert len(rows) == 2 and all(r["tiers"] == ["last"] for r in rows)
