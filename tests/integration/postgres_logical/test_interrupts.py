"""A backup killed with SIGKILL mid-stream leaves nothing that counts as a
backup, and the next run succeeds; two overlapping runs of one series do
not collide (the second exits 6 with the lock message)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEAWALL, run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PgCluster, make_cluster

# gzip at level 9 in-process is slow enough (~15 MB/s) to give a window of seconds.
SLOW = {"COMPRESSION": "gzip", "COMPRESSION_LEVEL": "9", "VERIFY_BACKUP": "false"}


@pytest.fixture(scope="module")
def big() -> Iterator[PgCluster]:
    c = make_cluster()
    c.psql("CREATE DATABASE big")
    c.psql(
        "CREATE TABLE noise AS SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) AS a"
        " FROM generate_series(1, 400000) g",
        "big",
    )
    yield c
    c.destroy()


def _wait_for_bytes(backup_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> Path:
    """Wait until the running backup has written some bytes to its partial file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "backup finished before it could be interrupted"
        partials = [p for p in backup_dir.rglob("*partial*") if p.is_file()]
        if partials and partials[0].stat().st_size > 256 * 1024:
            return partials[0]
        time.sleep(0.02)
    raise AssertionError("no bytes flowing")


def test_kill_9_mid_stream_then_next_run_succeeds(big: PgCluster, backup_dir: Path) -> None:
    env = seawall_env(big, backup_dir, **SLOW)
    proc = subprocess.Popen([SEAWALL, "postgres", "backup", "-d", "big"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_bytes(backup_dir, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not [m for m in manifests(backup_dir, "big") if m["status"] == "success"]
    res = run_seawall(["postgres", "list", "--json"], env)
    assert [r for r in json.loads(res.stdout) if r["status"] == "success"] == []
    res = run_seawall(["postgres", "verify", "latest", "-d", "big"], env)
    assert res.returncode == 4

    res = run_seawall(["postgres", "backup", "-d", "big"], {**env, "COMPRESSION_LEVEL": "1"})
    assert res.returncode == 0, res.stderr
    assert [m["status"] for m in manifests(backup_dir, "big")] == ["success"]
    res = run_seawall(["postgres", "verify", "latest", "-d", "big"], env)
    assert res.returncode == 0, res.stderr


def test_concurrent_backups_of_one_series(big: PgCluster, backup_dir: Path) -> None:
    env = seawall_env(big, backup_dir, LOCK_TIMEOUT="0.5", **SLOW)
    first = subprocess.Popen([SEAWALL, "postgres", "backup", "-d", "big"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_bytes(backup_dir, first)
    second = run_seawall(["postgres", "backup", "-d", "big"], env)
    assert second.returncode == 6, second.stderr
    assert "holds the lock" in second.stderr and str(first.pid) in second.stderr
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert [m["status"] for m in manifests(backup_dir, "big")] == ["success"]


def test_interrupted_deep_verify_drops_its_scratch_database(
    big: PgCluster, backup_dir: Path
) -> None:
    env = seawall_env(big, backup_dir, VERIFY_BACKUP="false")
    assert run_seawall(["postgres", "backup", "-d", "big"], env).returncode == 0
    proc = subprocess.Popen([SEAWALL, "postgres", "verify", "latest", "-d", "big", "--deep"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    query = "SELECT count(*) FROM pg_database WHERE datname LIKE 'seawall_verify_%'"
    deadline = time.monotonic() + 60
    while big.psql(query) == "0":
        assert proc.poll() is None, "verify finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert big.psql(query) == "0"


def test_sigterm_mid_backup_records_a_failed_run(big: PgCluster, backup_dir: Path) -> None:
    """A stopped Job (SIGTERM) cleans up and leaves a failed manifest for alerting."""
    env = seawall_env(big, backup_dir, **SLOW)
    proc = subprocess.Popen([SEAWALL, "postgres", "backup", "-d", "big"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_bytes(backup_dir, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [m] = manifests(backup_dir, "big")
    assert m["status"] == "failed" and m["error"] == "interrupted"
    assert not [p for p in backup_dir.rglob("*partial*")]
    assert [p.name for p in (backup_dir / "postgresql/logical/big" / m["id"]).iterdir()] == [
        "manifest.json"
    ]


def test_dump_connection_killed_mid_stream_removes_everything_stored(
    big: PgCluster, backup_dir: Path
) -> None:
    """pg_dump's server connection dies half-way (pg_terminate_backend): the
    run fails with pg_dump's error and a failed manifest, and nothing it
    stored is left, including the globals artifact written beside the dump."""
    env = seawall_env(big, backup_dir, **SLOW)
    proc = subprocess.Popen([SEAWALL, "postgres", "backup", "-d", "big"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_bytes(backup_dir, proc)
    folder = next((backup_dir / "postgresql/logical/big").iterdir())
    deadline = time.monotonic() + 30
    while not list(folder.glob("globals.sql*")):  # stored while the dump streams
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    while (
        big.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE query LIKE 'COPY %' AND pid <> pg_backend_pid()"
        )
        != "1"
    ):  # pg_dump may be between two statements for a moment
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # SeawallError: pg_dump failed (docs/exit-codes.md)
    assert b"pg_dump" in err
    [m] = manifests(backup_dir, "big")
    assert m["status"] == "failed" and "pg_dump" in m["error"]
    assert [p.name for p in folder.iterdir()] == ["manifest.json"]


def test_pg_dumpall_failing_stops_the_dump_and_is_the_error(
    big: PgCluster, backup_dir: Path, tmp_path: Path
) -> None:
    """pg_dumpall runs beside the dump; when it fails, the dump is stopped
    (not streamed to the end for nothing), pg_dumpall's error is the one
    reported, and nothing stored is left."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pg_dump").symlink_to(big.bin_dir / "pg_dump")
    fake = bindir / "pg_dumpall"
    real = big.bin_dir / "pg_dumpall"
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec "{real}" --version; fi\n'
        "echo 'pg_dumpall: error: injected failure' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    env = seawall_env(big, backup_dir, PG_BIN_DIR=str(bindir), **SLOW)
    res = run_seawall(["postgres", "backup", "-d", "big"], env)
    assert res.returncode == 1, res.stderr  # SeawallError: pg_dumpall failed
    assert "injected failure" in res.stderr
    assert "the dump ended with" in res.stderr  # stopped, not completed
    [m] = manifests(backup_dir, "big")
    assert m["status"] == "failed" and "injected failure" in m["error"]
    folder = backup_dir / "postgresql/logical/big" / m["id"]
    assert [p.name for p in folder.iterdir()] == ["manifest.json"]
