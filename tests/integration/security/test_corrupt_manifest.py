"""A corrupt manifest is "corrupt" (exit 3), not "not found" (exit 4); the
manifest's ``stored_size`` is compared with the artifact (issue 11 item 10).

Real backups of a real cluster and of the Qdrant test server; the files
are then damaged on disk the way a bad disk or a careless edit does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import backup_folder, seawall_env
from tests.qdrant_server import fixtures as qfx
from tests.support.pgcluster import PgCluster

qdrant_server = qfx.qdrant_server
qdir = qfx.qdir

DAMAGE = {
    "truncated": lambda b: b[: len(b) // 2],
    "garbage": lambda b: os.urandom(len(b)),
    "empty": lambda b: b"",
    "not-a-manifest": lambda b: b'{"hello": "world"}',
    "wrong-type": lambda b: json.dumps({**json.loads(b), "artifacts": "oops"}).encode(),
}


def _backup(cluster: PgCluster, backup_dir: Path) -> tuple[dict[str, str], str, Path]:
    env = seawall_env(cluster, backup_dir, DATABASES="app", ENCRYPTION="false")
    res = run_seawall(["postgres", "backup", "--json"], env)
    assert res.returncode == 0, res.stderr
    [made] = json.loads(res.stdout)
    return env, made["id"], backup_folder(backup_dir, "app", made["id"])


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_corrupt_manifest_is_exit_3(cluster: PgCluster, backup_dir: Path, damage: str) -> None:
    env, backup_id, folder = _backup(cluster, backup_dir)
    manifest = folder / "manifest.json"
    manifest.write_bytes(DAMAGE[damage](manifest.read_bytes()))
    for args in (
        ["postgres", "verify", backup_id],
        ["postgres", "verify", backup_id, "-d", "app"],
        ["postgres", "restore", backup_id, "-d", "app", "--target-db", "never"],
        ["postgres", "verify", "latest", "-d", "app"],
        ["postgres", "restore", "latest", "-d", "app", "--target-db", "never"],
    ):
        res = run_seawall(args, env)
        assert res.returncode == 3, (args, res.returncode, res.stderr)
        assert "manifest is corrupt" in res.stderr and backup_id in res.stderr, res.stderr
        assert "not found" not in res.stderr
    assert cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'never'") == "0"
    # an id that really does not exist is still "not found"
    res = run_seawall(["postgres", "verify", "20200101T000000Z-dead"], env)
    assert res.returncode == 4, res.stderr


def test_stored_size_is_compared(cluster: PgCluster, backup_dir: Path) -> None:
    """The manifest says one size, the (intact, sha256-correct) file has another:
    the manifest and the volume disagree, and verify and restore say so."""
    env, backup_id, folder = _backup(cluster, backup_dir)
    manifest = folder / "manifest.json"
    data = json.loads(manifest.read_text())
    dump = next(a for a in data["artifacts"] if a["role"] == "dump")
    assert (folder / dump["name"]).stat().st_size == dump["stored_size"]
    dump["stored_size"] += 1
    manifest.write_text(json.dumps(data))
    for args in (
        ["postgres", "verify", backup_id],
        ["postgres", "verify", backup_id, "--deep"],
        ["postgres", "restore", backup_id, "-d", "app", "--target-db", "never"],
    ):
        res = run_seawall(args, env)
        assert res.returncode == 3, (args, res.returncode, res.stderr)
        assert "stored_size" in res.stderr, res.stderr
    assert cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'never'") == "0"


def test_truncated_artifact_names_its_size(cluster: PgCluster, backup_dir: Path) -> None:
    env, backup_id, folder = _backup(cluster, backup_dir)
    data = json.loads((folder / "manifest.json").read_text())
    dump = next(a for a in data["artifacts"] if a["role"] == "dump")
    path = folder / dump["name"]
    path.write_bytes(path.read_bytes()[:-100])
    res = run_seawall(["postgres", "restore", backup_id, "-d", "app", "--target-db", "never"], env)
    assert res.returncode == 3, res.stderr
    assert f"{dump['stored_size'] - 100} bytes stored" in res.stderr, res.stderr


def test_qdrant_corrupt_manifest_and_stored_size(qdrant_server: Any, qdir: Path) -> None:
    qdrant_server.create_collection("docs", 8, points=50, seed=1)
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
        "BACKUP_DIR": str(qdir), "QDRANT_URL": qdrant_server.url,
        "LOG_FORMAT": "json", "PRUNE_AFTER_BACKUP": "false",
    }  # fmt: skip
    res = run_seawall(["qdrant", "backup", "docs", "--no-verify"], env)
    assert res.returncode == 0, res.stderr
    [manifest] = qdir.glob("qdrant/*/docs/*/manifest.json")
    backup_id = manifest.parent.name
    good = manifest.read_bytes()

    data = json.loads(good)
    data["artifacts"][0]["stored_size"] += 7
    manifest.write_text(json.dumps(data))
    for args in (
        ["qdrant", "verify", backup_id],
        ["qdrant", "restore", backup_id, "--to", "docs_copy"],
    ):
        res = run_seawall(args, env)
        assert res.returncode == 3, (args, res.returncode, res.stderr)
        assert "stored_size" in res.stderr, res.stderr

    manifest.write_bytes(good[:40])
    for args in (
        ["qdrant", "verify", backup_id],
        ["qdrant", "restore", backup_id, "--to", "docs_copy"],
    ):
        res = run_seawall(args, env)
        assert res.returncode == 3, (args, res.returncode, res.stderr)
        assert "manifest is corrupt" in res.stderr, res.stderr
