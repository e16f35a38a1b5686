"""Sequences advanced while the backup runs (session 7 hunt).

A sequence is not transactional: the backup records its value before
pg_dump starts, and pg_dump reads it later, so on a busy database the
restored value is *ahead* of the recorded one. For a descending sequence
ahead is below: `verify --deep` used to call that a corrupt backup (exit 3)
for every busy database with a countdown sequence.

The race is made deterministic with a real lock: the test holds an ACCESS
EXCLUSIVE lock on one table, so pg_dump (which locks every table before it
reads any data) waits after the statistics were taken; the sequences move
on meanwhile, then the lock is released.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg

from seawall.catalog.models import ContentStats
from seawall.postgres.logical.stats import compare
from tests.conftest import SEAWALL, run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PASSWORD, PgCluster


def _wait_for_lock_waiter(conn: psycopg.Connection[tuple[object, ...]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'LOCK TABLE%gate%'"
        ).fetchone()
        if row and int(str(row[0])) > 0:
            return
        time.sleep(0.05)
    raise AssertionError("pg_dump never waited for the lock on gate")


def test_sequences_moving_during_the_backup_verify_in_their_direction(
    pg: PgCluster, backup_dir: Path
) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE gate (i int); CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g; "
        "CREATE SEQUENCE up; CREATE SEQUENCE down INCREMENT -1; "
        "SELECT nextval('up'), nextval('down') FROM generate_series(1, 3)",
        "app",
    )
    env = seawall_env(pg, backup_dir)
    assert run_seawall(["init"], env).returncode == 0
    dsn = pg.conninfo("app") + f" password={PASSWORD}"
    with psycopg.connect(dsn, autocommit=True) as watch, psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
        backup = subprocess.Popen(
            [SEAWALL, "postgres", "backup", "-d", "app", "--no-verify"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for_lock_waiter(watch, timeout=120)
            watch.execute("SELECT nextval('up'), nextval('down') FROM generate_series(1, 5)")
        finally:
            holder.rollback()  # releases the lock: pg_dump goes on
            _out, err = backup.communicate(timeout=300)
    assert backup.returncode == 0, err

    recorded = manifests(backup_dir, "app")[-1]["postgres"]["stats"]["sequences"]
    assert recorded == {"public.up": 3, "public.down": -3}  # taken before the lock wait

    res = run_seawall(["postgres", "verify", "latest", "-d", "app", "--deep"], env)
    assert res.returncode == 0, res.stderr  # was 3: "last_value -8, expected >= -3"
    assert "statistics match" in res.stdout


def test_a_sequence_behind_in_its_direction_is_still_a_failure() -> None:
    expected = ContentStats(sequences={"s.up": 10, "s.down": -10})
    fine = ContentStats(sequences={"s.up": 15, "s.down": -15})
    assert compare(expected, fine, descending={"s.down"}) == []
    behind = ContentStats(sequences={"s.up": 9, "s.down": -9})
    assert compare(expected, behind, descending={"s.down"}) == [
        "sequence s.up: last_value 9, expected >= 10",
        "sequence s.down: last_value -9, expected <= -10",
    ]
