"""A database whose settings carry the application's timeouts (session 7 hunt).

Production databases and roles often have ``statement_timeout``,
``lock_timeout`` and ``idle_in_transaction_session_timeout`` set with
``ALTER DATABASE/ROLE … SET``. pg_dump and pg_restore switch them off for
their own sessions; seawall's own queries (the row counts in the dump's
snapshot, the deep verify's statistics) inherited them, and the backup died
with "canceling statement due to statement timeout" as soon as one count
took longer than the timeout, e.g. while a migration held a table's lock.

Made deterministic with a real lock: the test holds an ACCESS EXCLUSIVE lock
on a table for longer than every timeout, then releases it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg

from tests.conftest import SEAWALL, run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PASSWORD, PgCluster


def test_backup_and_deep_verify_ignore_the_applications_timeouts(
    pg: PgCluster, backup_dir: Path
) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE busy AS SELECT g FROM generate_series(1, 1000) g", "app")
    pg.psql(
        "ALTER DATABASE app SET statement_timeout = '300ms'; "
        "ALTER DATABASE app SET lock_timeout = '200ms'; "
        "ALTER DATABASE app SET idle_in_transaction_session_timeout = '300ms'; "
        "ALTER ROLE postgres SET statement_timeout = '300ms'"
    )
    env = seawall_env(pg, backup_dir)
    assert run_seawall(["init"], env).returncode == 0
    dsn = (
        pg.conninfo("app")
        + f" password={PASSWORD} options='-c statement_timeout=0 -c idle_in_transaction_session_timeout=0'"
    )
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")  # a migration, say
        backup = subprocess.Popen(
            [SEAWALL, "postgres", "backup", "-d", "app", "--no-verify"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)  # longer than every timeout above; the backup must wait, not fail
        holder.rollback()
        _out, err = backup.communicate(timeout=300)
    assert backup.returncode == 0, err  # was 1: "canceling statement due to statement timeout"
    assert (
        manifests(backup_dir, "app")[-1]["postgres"]["stats"]["tables"]["public.busy"]["rows"]
        == 1000
    )

    res = run_seawall(["postgres", "verify", "latest", "-d", "app", "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert "statistics match: 1 tables, 1000 rows" in res.stdout
