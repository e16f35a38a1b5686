"""What the scratch copy of verify --deep and drills must leave out (session 7 hunt).

A database that subscribes to logical replication:

pg_dump keeps the database's subscriptions (as superuser), and PostgreSQL
refuses to drop a database that holds one. `verify --deep` and `seawall
drill` restored them into their scratch copy, could not drop it, and left a
full copy of the database behind on the server at every run while
reporting success. The scratch copy is restored without subscriptions (the
content does not depend on them) and is gone afterwards.

A database guarded by an event trigger that refuses DDL (a common
production guard): restored into the scratch copy, it refused the checks'
own DDL there (``CREATE EXTENSION amcheck``, the column-order copy), so
every drill failed and content checksums became undecided. The scratch
copy is restored without event triggers.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import seawall_env
from tests.support.pgcluster import PgCluster


def _scratch_databases(pg: PgCluster) -> list[str]:
    return pg.psql(
        "SELECT datname FROM pg_database WHERE datname LIKE 'seawall\\_%' ORDER BY 1"
    ).splitlines()


def test_deep_verify_and_drill_leave_no_scratch_copy_of_a_subscriber(
    pg: PgCluster, backup_dir: Path
) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g; "
        "CREATE SUBSCRIPTION feed CONNECTION 'host=127.0.0.1 dbname=upstream' "
        "PUBLICATION orders WITH (connect = false)",
        "app",
    )
    env = seawall_env(pg, backup_dir, DB_NAME="app", ENGINES="postgres")
    assert run_seawall(["init"], env).returncode == 0
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr

    res = run_seawall(["postgres", "verify", "latest", "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert "statistics match: 1 tables, 100 rows" in res.stdout
    assert _scratch_databases(pg) == []  # was: seawall_verify_… left behind
    assert "could not drop" not in res.stderr

    res = run_seawall(["drill"], env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _scratch_databases(pg) == []
    # the subscription itself was backed up: a real restore brings it back
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "app2"], env)
    assert res.returncode == 0, res.stderr
    assert pg.psql("SELECT subname FROM pg_subscription ORDER BY 1").splitlines() == [
        "feed",
        "feed",
    ]


def test_a_ddl_guard_event_trigger_does_not_fail_drills_or_weaken_verify(
    pg: PgCluster, backup_dir: Path
) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g; CREATE INDEX ON t (id); "
        # an inheritance child restored in another column order: verify copies it (DDL)
        "CREATE TABLE p (id int, city text); CREATE TABLE c (extra text) INHERITS (p); "
        "ALTER TABLE p ADD COLUMN temp numeric; INSERT INTO c VALUES (1, 'x', 'e', 2); "
        "CREATE FUNCTION no_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'DDL is not allowed in production (%)', tg_tag; END $$; "
        "CREATE EVENT TRIGGER no_ddl ON ddl_command_start EXECUTE FUNCTION no_ddl(); "
        "COMMENT ON EVENT TRIGGER no_ddl IS 'ask the DBA'",
        "app",
    )
    env = seawall_env(pg, backup_dir, DB_NAME="app", ENGINES="postgres")
    assert run_seawall(["init"], env).returncode == 0
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr

    res = run_seawall(["postgres", "verify", "latest", "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert "statistics match: 3 tables, 101 rows" in res.stdout
    assert "undecided" not in res.stdout  # was: public.c's checksum, "DDL is not allowed"

    res = run_seawall(["drill"], env)
    assert res.returncode == 0, res.stdout + res.stderr  # was 3: amcheck refused
    assert "passed  amcheck" in res.stdout
    assert _scratch_databases(pg) == []

    # a real restore keeps the guard
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "app2"], env)
    assert res.returncode == 0, res.stderr
    assert pg.psql("SELECT evtname FROM pg_event_trigger", "app2") == "no_ddl"
