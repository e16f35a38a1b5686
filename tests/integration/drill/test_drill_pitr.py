"""`seawall drill` with base backups: PITR into a throwaway server, after the logical drill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seawall.exporter.collector import SeawallCollector, make_registry
from tests.conftest import SEAWALL, run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL
from tests.integration.wal.helpers import Archived, make_archived
from tests.support.pgcluster import PgCluster


@pytest.fixture
def arch(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> Iterator[Archived]:
    yield make_archived(pg_factory, backup_dir, age_keys)


#: how long to wait for something the machine will do, however busy (a deadline, not a
#: pause: every wait below ends as soon as the thing has happened); a shared 2-core
#: machine under load 7-15 made the earlier 30 s and 120 s deadlines flaky
WAIT = 600.0


def _leftover_dirs(drill_id: str) -> list[Path]:
    key = drill_id.lower().replace("-", "_")
    return list(Path(tempfile.gettempdir()).glob(f"seawall_drill_{key}*"))


def test_drill_logical_then_pitr_to_the_end_of_the_archive(arch: Archived) -> None:
    pg = arch.pg
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    assert arch.seawall("postgres", "backup", "-d", "items").returncode == 0
    arch.basebackup()
    # written after both backups: only WAL replay brings these rows back
    pg.psql("INSERT INTO items (name) SELECT 'late ' || g FROM generate_series(1, 10) g", "items")
    arch.switch_and_wait(timeout=WAIT)
    databases = pg.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
    res = arch.seawall(
        "drill",
        "--json",
        DB_NAME="items",
        DRILL_SMOKE_QUERY="SELECT count(*) FROM items",
        DRILL_SMOKE_MIN="3000",
        PRUNE_AFTER_BACKUP="false",
    )
    assert res.returncode == 0, res.stderr + res.stdout
    out = json.loads(res.stdout)
    assert [(t["method"], t["series"], t["verdict"]) for t in out["targets"]] == [
        ("logical", "items", "passed"),
        ("pitr", "main", "passed"),
    ]
    logical, pitr = out["targets"]
    smoke = {
        t["method"]: next(c for c in t["checks"] if c["name"] == "smoke query")
        for t in (logical, pitr)
    }
    assert smoke["logical"]["detail"] == "returned 3000"
    assert smoke["pitr"]["detail"] == "in items: returned 3010"  # the WAL after the base backup
    checks = {c["name"]: c["status"] for c in pitr["checks"]}
    assert checks == {"recovery": "passed", "amcheck": "passed", "smoke query": "passed"}
    assert pitr["rto_seconds"] > 0 and pitr["rpo_seconds"] is not None
    assert out["rto_total_seconds"] == pytest.approx(
        logical["rto_seconds"] + pitr["rto_seconds"], abs=0.01
    )
    assert _leftover_dirs(out["id"]) == []  # the throwaway server is stopped and removed
    assert pg.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database") == databases
    reg = make_registry(SeawallCollector(arch.backup_dir))
    labels = {"engine": "postgresql", "series": "main"}
    assert reg.get_sample_value("seawall_drill_last_success", labels) == 1
    assert reg.get_sample_value("seawall_drill_rto_seconds", labels) == pytest.approx(
        pitr["rto_seconds"], abs=0.01
    )


def test_kill_9_during_pitr_leaves_a_running_server_the_next_drill_stops_and_removes(
    arch: Archived,
) -> None:
    arch.basebackup()
    arch.pg.psql("CREATE TABLE after_base AS SELECT generate_series(1, 1000) AS x")
    arch.switch_and_wait(timeout=WAIT)
    env = arch.env(DB_NAME="postgres", PRUNE_AFTER_BACKUP="false")
    before = set(Path(tempfile.gettempdir()).glob("seawall_drill_*_pitr"))
    proc = subprocess.Popen(
        [SEAWALL, "drill"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + WAIT
        while True:
            pids = [
                p
                for p in Path(tempfile.gettempdir()).glob(
                    "seawall_drill_*_pitr/data/postmaster.pid"
                )
                if p.parents[1] not in before
            ]
            if pids:
                break
            assert proc.poll() is None, "the drill ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    [pidfile] = pids
    root = pidfile.parents[1]
    postmaster = _postmaster_pid(pidfile)
    os.kill(postmaster, 0)  # the throwaway server outlived the drill
    res = run_seawall(["drill", "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert f"postgresql data directory {root}" in out["leftovers_removed"]
    assert [t["verdict"] for t in out["targets"]] == ["passed"]
    assert not root.exists()
    # stopped: gone, or exited and not yet reaped (a zombie whose parent, the
    # killed drill, is gone: reaping is up to whoever adopted it)
    deadline = time.monotonic() + WAIT
    while _running(postmaster):
        assert time.monotonic() < deadline, f"postmaster {postmaster} still running"
        time.sleep(0.1)


def _postmaster_pid(pidfile: Path) -> int:
    """The pid in ``postmaster.pid``, once the postmaster has written it.

    PostgreSQL creates the file empty, then writes it: the fixed 0.5 s pause
    used before is a guess a busy machine can outlast (an empty file, no pid
    to read). Polled instead, with the same deadline as the other waits.
    """
    deadline = time.monotonic() + WAIT
    while True:
        lines = pidfile.read_text().splitlines()
        if len(lines) > 1 and lines[0].strip().isdigit():  # the pid and the data directory
            return int(lines[0])
        assert time.monotonic() < deadline, f"{pidfile} still incomplete: {lines}"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """True while ``pid`` is a live process (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
