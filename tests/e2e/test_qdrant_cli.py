"""`seawall qdrant ...` and `seawall backup` as a user runs them, against the
Qdrant test server (real HTTP on 127.0.0.1) or a real Qdrant at QDRANT_URL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEAWALL
from tests.qdrant_server import QdrantTestServer, fixtures as qfx
from tests.qdrant_server.fixtures import require_faults
from tests.support.pgcluster import PASSWORD, PgCluster

DIM = 8

# pytest fixtures of the Qdrant test server (a non-root conftest may not use pytest_plugins)
qdrant_server = qfx.qdrant_server
qdrant_server_with_key = qfx.qdrant_server_with_key


@pytest.fixture
def qdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="seawall-qdrant-e2e-", dir="/tmp"))
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def env_for(handle: Any, backup_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BACKUP_DIR": str(backup_dir),
        "LOG_FORMAT": "json",
        "PRUNE_AFTER_BACKUP": "false",
    }
    if handle is not None:
        env["QDRANT_URL"] = handle.url
        if handle.api_key:
            env["QDRANT_API_KEY"] = handle.api_key
    env.update(extra)
    return env


def sw(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([SEAWALL, *args], env=env, capture_output=True, text=True, timeout=timeout)
    key = env.get("QDRANT_API_KEY")
    if key:
        assert key not in res.stdout and key not in res.stderr, "API key leaked"
    return res


def test_cli_collections_backup_list_verify_restore(qdrant_server: Any, qdir: Path) -> None:
    qdrant_server.create_collection("docs", DIM, points=300, seed=1)
    qdrant_server.create_collection("more", DIM, points=50, seed=2)
    env = env_for(qdrant_server, qdir)

    res = sw(["qdrant", "collections", "--json"], env)
    assert res.returncode == 0, res.stderr
    rows = {c["name"]: c for c in json.loads(res.stdout)["collections"]}
    assert rows["docs"]["points_count"] == 300 and rows["docs"]["vectors"] == f"{DIM}/Cosine"

    res = sw(["qdrant", "backup", "docs", "more"], env)
    assert res.returncode == 0, res.stderr
    assert "'docs': backup" in res.stdout and "verified" in res.stdout

    res = sw(["qdrant", "list", "--json"], env)
    backups = json.loads(res.stdout)["backups"]
    assert sorted(b["series"] for b in backups) == ["docs", "more"]
    docs_id = next(b["id"] for b in backups if b["series"] == "docs")
    # Tiers come from the retention decision: the only backup fills every bucket.
    assert all(set(b["tiers"]) >= {"daily", "weekly", "monthly"} for b in backups)
    res = sw(["qdrant", "list"], env)
    assert "tiers daily,weekly,monthly" in res.stdout

    res = sw(["qdrant", "verify", "latest"], env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(": OK:") == 2

    res = sw(["qdrant", "verify", docs_id, "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert "segment data" in res.stdout and "300 points" in res.stdout

    qdrant_server.delete_collection("docs")
    res = sw(["qdrant", "restore", "latest"], env)
    assert res.returncode == 2 and "--collection" in res.stderr  # ambiguous
    res = sw(["qdrant", "restore", "latest", "--collection", "docs"], env)
    assert res.returncode == 0, res.stderr
    assert "points count 300 matches" in res.stdout
    assert qdrant_server.points_count("docs") == 300


def test_cli_exit_codes(qdrant_server: Any, qdir: Path) -> None:
    faults = require_faults(qdrant_server)
    qdrant_server.create_collection("ok", DIM, points=10, seed=3)
    qdrant_server.create_collection("bad", DIM, points=10, seed=4)
    faults.fail_create(500, collection="bad")
    env = env_for(qdrant_server, qdir)
    res = sw(["qdrant", "backup"], env)
    assert res.returncode == 10, res.stderr
    assert "1 of 2 Qdrant collections failed ('bad')" in res.stderr
    # corrupt the stored artifact: verify exits 3
    (art,) = [p for p in qdir.rglob("snapshot.tar*") if p.is_file()]
    art.write_bytes(art.read_bytes()[:-100])
    res = sw(["qdrant", "verify", "latest", "--collection", "ok"], env)
    assert res.returncode == 3, res.stderr
    # down server: exit 5
    res = sw(["qdrant", "backup"], env_for(None, qdir, QDRANT_URL="http://127.0.0.1:9"))
    assert res.returncode == 5 and "cannot reach Qdrant" in res.stderr
    # unknown backup: exit 4
    res = sw(["qdrant", "restore", "20200101T000000Z-abcd"], env)
    assert res.returncode == 4


def test_cli_api_key_never_in_output_logs_or_manifests(
    qdrant_server_with_key: Any, qdir: Path, tmp_path: Path
) -> None:
    server = qdrant_server_with_key
    server.create_collection("secret", DIM, points=20, seed=5)
    log_file = tmp_path / "seawall.log"
    key_file = tmp_path / "key"
    key_file.write_text(server.api_key + "\n")
    env = env_for(server, qdir, LOG_FILE=str(log_file), LOG_LEVEL="debug")
    env.pop("QDRANT_API_KEY")
    env["QDRANT_API_KEY_FILE"] = str(key_file)
    res = sw(["qdrant", "backup", "secret"], env)
    assert res.returncode == 0, res.stderr
    res2 = sw(["qdrant", "restore", "latest", "--to", "secret-copy"], env)
    assert res2.returncode == 0, res2.stderr
    key = server.api_key
    blobs = [res.stdout, res.stderr, res2.stdout, res2.stderr, log_file.read_text()]
    blobs += [p.read_text() for p in qdir.rglob("manifest.json")]
    blobs += [p.read_text() for p in qdir.rglob("*.lock")]
    assert log_file.read_text()  # the log was written at debug level
    assert all(key not in b for b in blobs)
    # wrong key: exit 5, the wrong key is not echoed either
    bad = env_for(server, qdir, QDRANT_API_KEY="not-the-key-42")
    res3 = sw(["qdrant", "collections"], bad)
    assert res3.returncode == 5 and "rejected the API key" in res3.stderr
    assert "not-the-key-42" not in res3.stderr + res3.stdout


def test_cli_full_storage(qdrant_server: Any, qdir: Path, tmp_path: Path) -> None:
    if not isinstance(qdrant_server, QdrantTestServer):
        pytest.skip("full-storage snapshots of a shared real server are not taken in tests")
    qdrant_server.create_collection("f1", 4, points=10, seed=6)
    env = env_for(qdrant_server, qdir)
    res = sw(["qdrant", "backup", "--full-storage"], env)
    assert res.returncode == 0, res.stderr
    assert "only at startup" in res.stdout
    res = sw(["qdrant", "list", "--json"], env)
    (b,) = json.loads(res.stdout)["backups"]
    assert b["kind"] == "full-storage" and b["verification"]["ok"]
    res = sw(["qdrant", "restore", b["id"]], env)
    assert res.returncode == 9 and "--storage-snapshot" in res.stderr
    out = tmp_path / "full.snapshot"
    res = sw(["qdrant", "restore", b["id"], "--output", str(out)], env)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size == b["artifacts"][0]["raw_size"]
    assert qdrant_server.all_snapshots() == []


def test_seawall_backup_runs_postgres_and_qdrant_together(
    qdrant_server: Any, pg: PgCluster, qdir: Path
) -> None:
    qdrant_server.create_collection("both", DIM, points=30, seed=7)
    pg.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g", "postgres")
    env = {**pg.env(), **env_for(qdrant_server, qdir, ENGINES="postgres,qdrant")}
    res = sw(["backup", "--json"], env)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert {(r["engine"], r["series"]) for r in rows} == {
        ("postgresql", "postgres"),
        ("qdrant", "both"),
    }
    assert all(r["ok"] for r in rows)
    assert PASSWORD not in res.stdout + res.stderr
    # Qdrant down: PostgreSQL still backed up, exit 10 (partial)
    env_down = {**env, "QDRANT_URL": "http://127.0.0.1:9"}
    res = sw(["backup"], env_down)
    assert res.returncode == 10, res.stderr
    assert "postgresql" in res.stdout and "FAILED" in res.stdout
