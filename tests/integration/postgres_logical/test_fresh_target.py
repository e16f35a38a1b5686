"""Restoring into a FRESH cluster, as disaster recovery does (session 7 hunt).

A fresh cluster lacks what the source cluster had around the database: its
tablespaces and its roles. Each case must give one line that names what is
missing and the fix, with the exit code that says so (never exit 5, "server
unreachable", for a server that answered), leave nothing under the target
name, and work once the fix is applied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import seawall_env
from tests.support.pgcluster import PgCluster

CONTENT = "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM t"


@pytest.fixture
def ts_dir() -> Iterator[Callable[[], Path]]:
    """Empty directories the postgres user owns (tablespace locations)."""
    made: list[Path] = []

    def make() -> Path:
        path = Path(tempfile.mkdtemp(prefix="seawall-ts-", dir="/tmp"))
        os.chmod(path, 0o700)
        shutil.chown(path, "postgres", "postgres")
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def _databases(cluster: PgCluster) -> set[str]:
    return set(cluster.psql("SELECT datname FROM pg_database").splitlines())


def test_tablespace_missing_on_the_target_is_refused_then_restorable(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, ts_dir: Callable[[], Path]
) -> None:
    src, fresh = pg_factory(), pg_factory()
    src.psql(f"CREATE TABLESPACE \"Fast disk\" LOCATION '{ts_dir()}'")
    src.psql("CREATE DATABASE app")
    src.psql(
        'CREATE TABLE t (id int PRIMARY KEY USING INDEX TABLESPACE "Fast disk", v text) '
        'TABLESPACE "Fast disk"; '
        "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g",
        "app",
    )
    want = src.psql(CONTENT, "app")
    assert run_seawall(["init"], seawall_env(src, backup_dir)).returncode == 0
    res = run_seawall(["postgres", "backup", "-d", "app"], seawall_env(src, backup_dir))
    assert res.returncode == 0, res.stderr

    env = seawall_env(fresh, backup_dir)
    # a deep verify (or a drill, DRILL_DB_HOST) on a scratch server without
    # the tablespace checks the content, which does not depend on placement
    res = run_seawall(["postgres", "verify", "latest", "-d", "app", "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert "statistics match: 1 tables, 500 rows" in res.stdout

    before = _databases(fresh)
    res = run_seawall(["postgres", "restore", "latest", "-d", "app", "--target-db", "app"], env)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 9, res.stderr
    assert "'Fast disk'" in lines[-1] and "--no-tablespaces" in lines[-1], res.stderr
    assert _databases(fresh) == before  # nothing left behind, not even the temporary one

    # a hand-made pg_dump -Fc (compressed inside: only its table of contents is read)
    foreign = backup_dir / "app.pgdump"
    dump = subprocess.run(
        [str(src.bin_dir / "pg_dump"), "-Fc", "-d", "app", "-f", str(foreign)],
        env=src.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr
    res = run_seawall(["postgres", "restore", str(foreign), "--target-db", "app"], env)
    assert res.returncode == 9 and "'Fast disk'" in res.stderr, res.stderr
    assert _databases(fresh) == before

    res = run_seawall(
        ["postgres", "restore", "latest", "-d", "app", "--target-db", "app", "--no-tablespaces"],
        env,
    )
    assert res.returncode == 0, res.stderr
    assert fresh.psql(CONTENT, "app") == want

    # once the operator has created the tablespace, the table goes back into it
    fresh.psql(f"CREATE TABLESPACE \"Fast disk\" LOCATION '{ts_dir()}'")
    res = run_seawall(["postgres", "restore", "latest", "-d", "app", "--target-db", "app2"], env)
    assert res.returncode == 0, res.stderr
    assert fresh.psql(CONTENT, "app2") == want
    placed = fresh.psql(
        "SELECT c.relname || '=' || coalesce(s.spcname, '-') FROM pg_class c "
        "LEFT JOIN pg_tablespace s ON s.oid = c.reltablespace "
        "WHERE c.relname IN ('t', 't_pkey') ORDER BY 1",
        "app2",
    )
    assert placed.splitlines() == ["t=Fast disk", "t_pkey=Fast disk"]


def test_missing_role_names_the_fix_and_is_not_server_unreachable(
    pg_factory: Callable[..., PgCluster], backup_dir: Path
) -> None:
    src, fresh = pg_factory(), pg_factory()
    src.psql("CREATE DATABASE app")
    src.psql('CREATE ROLE "App Owner"')
    src.psql(
        "CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, 'v' || g "
        'FROM generate_series(1, 50) g; ALTER TABLE t OWNER TO "App Owner"',
        "app",
    )
    want = src.psql(CONTENT, "app")
    assert run_seawall(["init"], seawall_env(src, backup_dir)).returncode == 0
    res = run_seawall(["postgres", "backup", "-d", "app"], seawall_env(src, backup_dir))
    assert res.returncode == 0, res.stderr

    env = seawall_env(fresh, backup_dir)
    before = _databases(fresh)
    res = run_seawall(["postgres", "restore", "latest", "-d", "app", "--target-db", "app"], env)
    assert res.returncode == 1, res.stderr  # was 5: "check DB_HOST/DB_PORT/DB_NAME"
    line = res.stderr.strip().splitlines()[-1]
    assert "DB_HOST" not in line
    assert "'App Owner'" in line and "--with-globals" in line and "--no-owner" in line, line
    assert _databases(fresh) == before

    res = run_seawall(
        ["postgres", "restore", "latest", "-d", "app", "--target-db", "app", "--with-globals"], env
    )
    assert res.returncode == 0, res.stderr
    assert fresh.psql(CONTENT, "app") == want
    assert fresh.psql("SELECT tableowner FROM pg_tables WHERE tablename = 't'", "app") == (
        "App Owner"
    )


def test_with_globals_leaves_an_admin_whose_name_needs_doubled_quotes_alone(
    pg_factory: Callable[..., PgCluster], backup_dir: Path
) -> None:
    """pg_dumpall writes ``"Ops ""DR"" admin"``: the filter must know that
    spelling too, or the source's password replaces the target admin's."""
    src, fresh = pg_factory(), pg_factory()
    admin, quoted = 'Ops "DR" admin', '"Ops ""DR"" admin"'
    src.psql(f"CREATE ROLE {quoted} SUPERUSER LOGIN PASSWORD 'source-pw-1'")
    fresh.psql(f"CREATE ROLE {quoted} SUPERUSER LOGIN PASSWORD 'target-pw-2'")
    src.psql("CREATE DATABASE app")
    src.psql("CREATE TABLE t AS SELECT g AS id, 'v' || g AS v FROM generate_series(1, 20) g", "app")
    assert run_seawall(["init"], seawall_env(src, backup_dir)).returncode == 0
    res = run_seawall(["postgres", "backup", "-d", "app"], seawall_env(src, backup_dir))
    assert res.returncode == 0, res.stderr

    env = seawall_env(fresh, backup_dir, PGUSER=admin, PGPASSWORD="target-pw-2")
    res = run_seawall(
        ["postgres", "restore", "latest", "-d", "app", "--target-db", "app", "--with-globals"], env
    )
    assert res.returncode == 0, res.stderr
    # the operator can still log in as the target's admin with the target's password
    login = subprocess.run(
        [
            str(fresh.bin_dir / "psql"),
            "-X",
            "-A",
            "-t",
            "-d",
            "app",
            "-c",
            "SELECT count(*) FROM t",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert login.returncode == 0 and login.stdout.strip() == "20", login.stderr
