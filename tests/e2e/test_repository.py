"""The repository must exist (issue 12, "Safe by default").

An unmounted volume must not look like an empty repository: reading
commands exit 7 with one line naming the fix, writing commands create at
most the repository's own top directory, and ``seawall init`` creates one on
purpose.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from seawall.ports import free_loopback_port
from tests.conftest import SEAWALL, run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, manifests, seawall_env
from tests.support.pgcluster import PgCluster

READERS = [
    ["postgres", "list"],
    ["qdrant", "list"],
    ["prune", "--dry-run"],
    ["postgres", "wal-check"],
    ["postgres", "verify", "latest"],
    ["postgres", "verify", "--base", "latest"],
    ["postgres", "restore", "latest", "--target-db", "x"],
    ["postgres", "pitr-restore", "--latest", "--data-dir", "/tmp/seawall-never-made"],
    ["qdrant", "verify", "latest"],
    ["qdrant", "restore", "latest", "--collection", "c", "--clean"],
]


def _env(**extra: str) -> dict[str, str]:
    drop = ("SEAWALL_", "DB_", "PG", "BACKUP_DIR", "QDRANT", "ENCRYPTION")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(LOG_FORMAT="json", **extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEAWALL, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_reading_a_missing_repository_is_an_error(args: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "volume" / "seawall"
    res = _run(args, _env(BACKUP_DIR=str(missing)))
    assert res.returncode == 7, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"repository {missing} does not exist" in lines[0]
    assert "seawall init" in lines[0]
    assert not missing.exists() and not missing.parent.exists()


def test_backup_dir_unset_means_slash_backups_which_must_exist(tmp_path: Path) -> None:
    if Path("/backups").exists():
        pytest.skip("/backups exists on this machine")
    res = _run(["postgres", "list"], _env())
    assert res.returncode == 7 and "repository /backups does not exist" in res.stderr
    assert "no logical backups" not in res.stdout


def test_missing_repository_with_json_prints_a_json_error(tmp_path: Path) -> None:
    res = _run(["postgres", "list", "--json"], _env(BACKUP_DIR=str(tmp_path / "nowhere")))
    assert res.returncode == 7
    err = json.loads(res.stdout)["error"]
    assert err["kind"] == "storage" and err["exit_code"] == 7
    assert "does not exist" in err["message"]


def test_exporter_refuses_a_missing_repository(tmp_path: Path) -> None:
    port = free_loopback_port()
    res = _run(
        ["exporter", "--listen", f"127.0.0.1:{port}"], _env(BACKUP_DIR=str(tmp_path / "gone"))
    )
    assert res.returncode == 7 and "does not exist" in res.stderr


@pytest.mark.parametrize("command", [["postgres", "backup"], ["backup"], ["qdrant", "backup"]])
def test_backup_never_creates_a_whole_path(command: list[str], tmp_path: Path) -> None:
    """The parent is missing (volume not mounted): nothing is created, exit 7."""
    repo = tmp_path / "mnt" / "volume" / "seawall"
    res = _run(command, _env(BACKUP_DIR=str(repo), QDRANT_URL="http://127.0.0.1:9"))
    assert res.returncode == 7, res.stderr
    assert f"neither does {repo.parent}" in res.stderr and "seawall init" in res.stderr
    assert not (tmp_path / "mnt").exists()


def test_wal_push_never_creates_a_whole_path(tmp_path: Path) -> None:
    """Lean path (falls back: no archive) and general path both refuse, nothing written."""
    seg = tmp_path / "000000010000000000000001"
    seg.write_bytes(b"\0" * 8192)
    repo = tmp_path / "mnt" / "seawall"
    res = _run(["postgres", "wal-push", str(seg)], _env(BACKUP_DIR=str(repo)))
    assert res.returncode == 7, res.stderr
    assert "does not exist" in res.stderr and not (tmp_path / "mnt").exists()


def test_wal_fetch_from_a_missing_repository_says_so(tmp_path: Path) -> None:
    """Not the quiet "not archived" exit 1 that would end a recovery early."""
    res = _run(
        ["postgres", "wal-fetch", "000000010000000000000001", str(tmp_path / "out")],
        _env(BACKUP_DIR=str(tmp_path / "gone")),
    )
    assert res.returncode == 7 and "does not exist" in res.stderr


def test_init_creates_a_private_repository_that_readers_accept(tmp_path: Path) -> None:
    repo = tmp_path / "a" / "b" / "seawall"
    env = _env(BACKUP_DIR=str(repo))
    res = _run(["init"], env)
    assert res.returncode == 0, res.stderr
    assert f"created repository {repo}" in res.stdout
    assert stat.S_IMODE(repo.stat().st_mode) == 0o700
    assert (repo / ".seawall-repository").is_file()
    again = _run(["init", "--json"], env)
    assert again.returncode == 0 and json.loads(again.stdout)["created"] is False
    listed = _run(["postgres", "list"], env)
    assert listed.returncode == 0 and "no logical backups" in listed.stdout


def test_backup_creates_only_the_repository_top_directory(pg: PgCluster, backup_dir: Path) -> None:
    """A fresh volume mounted at backup_dir, repository one level below: created, 0700."""
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    repo = backup_dir / "seawall"
    res = run_seawall(["postgres", "backup"], seawall_env(pg, repo, DB_NAME="items"))
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(repo.stat().st_mode) == 0o700
    assert manifests(repo, "items")[0]["status"] == "success"
