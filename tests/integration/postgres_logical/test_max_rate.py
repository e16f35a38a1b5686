"""``--max-rate`` / ``MAX_RATE`` reach the repository: a real ``seawall postgres
backup`` of ~3 MiB of incompressible rows, throttled to 1 MiB/s, cannot finish
sooner than its stored bytes allow; unthrottled it does (so the check can fail).
The bucket's accuracy (the average within 5 %) is tests/integration/storage/
test_throttle_rate.py; this proves the wiring of the option and the setting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PgCluster

MIB = 1024 * 1024
RATE = 384 * 1024  # ~3.5 MiB stored: at least ~9 s throttled


@pytest.fixture
def blobs(pg: PgCluster) -> PgCluster:
    pg.psql("CREATE DATABASE blobs")
    # md5 output is uniform: ~3.2 MB that no compressor shrinks below ~half of its hex
    pg.psql(
        "CREATE TABLE b AS SELECT g AS id, decode(md5(random()::text) || "
        "md5(random()::text), 'hex') AS v FROM generate_series(1, 100000) g",
        "blobs",
    )
    return pg


def _backup(env: dict[str, str], *extra: str) -> tuple[float, str]:
    started = time.monotonic()
    res = run_seawall(["postgres", "backup", "-d", "blobs", *extra], env)
    assert res.returncode == 0, res.stderr
    return time.monotonic() - started, res.stderr


def test_max_rate_option_and_setting_throttle_the_backup(
    blobs: PgCluster, backup_dir: Path
) -> None:
    """The limit is announced (deterministic proof of the wiring) and holds: the
    throttled run cannot be faster than its stored bytes at the rate. (Timing an
    unthrottled run against the floor is no proof on a loaded machine, where a
    plain backup may take longer than the floor: the log line is.)"""
    env = seawall_env(blobs, backup_dir, VERIFY_BACKUP="false")
    _, log = _backup(env)
    assert "MAX_RATE" not in log
    stored = sum(a["stored_size"] for a in manifests(backup_dir, "blobs")[-1]["artifacts"])
    assert stored > 2 * MIB
    floor = stored / RATE  # seconds the throttled writes need at least

    throttled, log = _backup(env, "--max-rate", "384KiB")
    assert "limited to 384.0 KiB/s (MAX_RATE)" in log
    assert throttled >= floor * 0.95, f"{stored} bytes in {throttled:.2f}s at 384 KiB/s"

    from_env, log = _backup({**env, "MAX_RATE": "393216"})
    assert "limited to 384.0 KiB/s (MAX_RATE)" in log
    assert from_env >= floor * 0.95, f"{stored} bytes in {from_env:.2f}s with MAX_RATE"


def test_a_bad_max_rate_is_one_line_exit_2(pg: PgCluster, backup_dir: Path) -> None:
    res = run_seawall(["postgres", "backup", "--max-rate", "fast"], seawall_env(pg, backup_dir))
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert "MAX_RATE" in line and "50MiB" in line
