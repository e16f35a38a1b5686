"""README.md's configuration, copied as written, must back up with exit 0.

The README recommends the age *recipient* only on the backup side
(``ENCRYPTION=true ENCRYPTION_RECIPIENTS=age1…``) and leaves VERIFY_BACKUP at
its default (true). Before, every backup stored a good artifact and then
failed its own verification for lack of the identity: exit 8 (logical),
exit 1 and a backup marked failed (base), exit 3 and a backup marked failed
(Qdrant), and retention after the backup never ran. Here each command runs
twice with the default retention policy (one backup per day kept), so the
older same-day backup must be gone afterwards: retention ran. The manifest
says which verification level ran ("stored"); a flipped byte in the stored
artifact is still caught without the identity (exit 3, docs/exit-codes.md);
``--deep`` without the identity exits 8 and records nothing; with the
identity the stronger levels run.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import run_seawall
from tests.e2e.test_qdrant_cli import DIM, env_for, qdir, sw
from tests.integration.wal.helpers import make_archived
from tests.qdrant_server import fixtures as qfx
from tests.support.pgcluster import PASSWORD, SUPERUSER, PgCluster

qdrant_server = qfx.qdrant_server
__all__ = ["qdir", "qdrant_server"]


def readme_env(pg: PgCluster, backup_dir: Path, public: str, tmp: Path) -> dict[str, str]:
    """The README's `export` lines, pointed at the test cluster (nothing else set)."""
    secret = tmp / "db-password"
    secret.write_text(PASSWORD + "\n")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BACKUP_DIR": str(backup_dir),
        "DB_HOST": pg.host,
        "DB_PORT": str(pg.port),
        "DB_NAME": "app",
        "DB_USER": SUPERUSER,
        "DB_PASSWORD_FILE": str(secret),
        "ENCRYPTION": "true",
        "ENCRYPTION_RECIPIENTS": public,
    }


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def manifests(root: Path) -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in root.glob("*/manifest.json")]
    return sorted(found, key=lambda m: str(m["started_at"]))


def plant_old_failure(series: Path, like: dict[str, Any]) -> Path:
    """A failed run from 60 days ago: retention after the next backup deletes it
    (past RETENTION_FAILED_GRACE), which proves retention ran."""
    old = {
        **like,
        "id": "20250101T000000Z-dead",
        "status": "failed",
        "error": "planted by the test",
        "started_at": "2025-01-01T00:00:00Z",
        "finished_at": None,
        "artifacts": [],
        "verification": None,
    }
    folder = series / old["id"]
    folder.mkdir(mode=0o700)
    (folder / "manifest.json").write_text(json.dumps(old))
    return folder


def assert_stored_level(m: dict[str, Any]) -> None:
    v = m["verification"]
    assert m["status"] == "success", m.get("error")
    assert v["ok"] and v["level"] == "stored" and not v["deep"], v
    text = "\n".join(v["checks"])
    assert "sha256 and size" in text and "X25519 stanza" in text and "payload framing ok" in text
    for art in m["artifacts"]:
        assert art["encryption"]["mode"] == "x25519"


def test_postgres_backup_with_readme_config(
    pg: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = age_keys
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g", "app"
    )
    env = readme_env(pg, backup_dir, public, tmp_path)
    series = backup_dir / "postgresql" / "logical" / "app"

    first = run_seawall(["postgres", "backup"], env)
    assert first.returncode == 0, first.stderr
    assert "verified (stored)" in first.stdout
    second = run_seawall(["postgres", "backup"], env)
    assert second.returncode == 0, second.stderr
    # retention ran after the backup: one backup per day, the newer one
    [m] = manifests(series)
    assert m["id"] in second.stdout
    assert_stored_level(m)
    dump = next(a for a in m["artifacts"] if a["role"] == "dump")
    assert dump["stream_check"]["ok"] and "table of contents" in dump["stream_check"]["detail"]
    globals_art = next(a for a in m["artifacts"] if a["role"] == "globals")
    assert globals_art["stream_check"]["format"] == "pg_dumpall script"

    # a plain verify without the identity runs the stored level and says so
    res = run_seawall(["postgres", "verify", "latest"], env)
    assert res.returncode == 0, res.stderr
    assert "stored level" in res.stdout and "verification passed" in res.stdout
    # --deep needs the identity: exit 8, one line, nothing recorded
    res = run_seawall(["postgres", "verify", "latest", "--deep"], env)
    assert res.returncode == 8, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "ENCRYPTION_IDENTITY_FILE" in res.stderr
    [m] = manifests(series)
    assert m["verification"]["ok"] and m["verification"]["level"] == "stored"
    # where the identity lives, the deep level runs and is recorded
    with_key = {**env, "ENCRYPTION_IDENTITY_FILE": str(key)}
    res = run_seawall(["postgres", "verify", "latest", "--deep", "--json"], with_key)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["level"] == "deep"
    [m] = manifests(series)
    assert m["verification"]["level"] == "deep"

    # a flipped byte in the stored dump is caught without the identity
    flip_byte(series / m["id"] / dump["name"])
    res = run_seawall(["postgres", "verify", "latest"], env)
    assert res.returncode == 3, res.stderr
    assert "sha256 mismatch" in res.stderr
    [m] = manifests(series)
    assert not m["verification"]["ok"] and m["verification"]["level"] == "stored"


def test_basebackup_with_readme_config(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    _, public = age_keys
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE DATABASE app")
    env = readme_env(arch.pg, backup_dir, public, tmp_path)
    series = backup_dir / "postgresql" / "base" / "main"

    first = run_seawall(["postgres", "basebackup", "--wal-wait", "30"], env)
    assert first.returncode == 0, first.stderr
    assert "verified (stored)" in first.stdout
    planted = plant_old_failure(series, manifests(series)[0])
    second = run_seawall(["postgres", "basebackup", "--wal-wait", "30"], env)
    assert second.returncode == 0, second.stderr
    # retention ran: the old failed run is gone (both base backups stay: the PITR window)
    assert not planted.exists()
    m = manifests(series)[-1]
    assert m["id"] in second.stdout
    assert_stored_level(m)
    [art] = m["artifacts"]
    assert art["stream_check"]["ok"] and "backup_manifest" in art["stream_check"]["detail"]

    res = run_seawall(["postgres", "verify", m["id"]], env)
    assert res.returncode == 0, res.stderr
    assert "stored level" in res.stdout
    res = run_seawall(["postgres", "verify", m["id"], "--deep"], env)
    assert res.returncode == 8 and len(res.stderr.strip().splitlines()) == 1, res.stderr

    flip_byte(series / m["id"] / art["name"])
    res = run_seawall(["postgres", "verify", m["id"]], env)
    assert res.returncode == 3, res.stderr
    assert "sha256 mismatch" in res.stderr + res.stdout
    m = manifests(series)[-1]
    assert not m["verification"]["ok"] and m["verification"]["level"] == "stored"


def test_qdrant_backup_with_readme_config(
    qdrant_server: Any, qdir: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    qdrant_server.create_collection("docs", DIM, points=200, seed=11)
    env = env_for(qdrant_server, qdir, ENCRYPTION="true", ENCRYPTION_RECIPIENTS=public)
    del env["PRUNE_AFTER_BACKUP"]  # the README leaves it at its default (true)
    series = qdir / "qdrant" / "snapshot" / "docs"

    first = sw(["qdrant", "backup"], env)
    assert first.returncode == 0, first.stderr
    assert "verified (stored)" in first.stdout
    second = sw(["qdrant", "backup"], env)
    assert second.returncode == 0, second.stderr
    [m] = manifests(series)  # retention ran
    assert m["id"] in second.stdout
    assert_stored_level(m)
    [art] = m["artifacts"]
    assert art["stream_check"]["ok"] and "Qdrant reported" in art["stream_check"]["detail"]

    res = sw(["qdrant", "verify", "latest"], env)
    assert res.returncode == 0, res.stderr
    assert "stored level" in res.stdout
    res = sw(["qdrant", "verify", "latest", "--deep"], env)
    assert res.returncode == 8, res.stderr
    [m] = manifests(series)
    assert m["verification"]["ok"] and m["verification"]["level"] == "stored"
    with_key = {**env, "ENCRYPTION_IDENTITY_FILE": str(key)}
    res = sw(["qdrant", "verify", "latest", "--json"], with_key)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["level"] == "decoded"

    flip_byte(series / m["id"] / art["name"])
    res = sw(["qdrant", "verify", "latest"], env)
    assert res.returncode == 3, res.stderr
    assert "sha256 mismatch" in res.stderr + res.stdout
    [m] = manifests(series)
    assert not m["verification"]["ok"] and m["verification"]["level"] == "stored"


def test_backup_with_a_non_matching_identity_falls_back_to_stored(
    pg: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], tmp_path: Path
) -> None:
    """An identity that does not open the new backup says nothing about the
    backup: the verification right after it falls back to the stored level
    (exit 0, retention runs) instead of exit 8."""
    _, public = age_keys
    other = tmp_path / "other.key"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    pg.psql("CREATE DATABASE app")
    env = {**readme_env(pg, backup_dir, public, tmp_path), "ENCRYPTION_IDENTITY_FILE": str(other)}
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    assert "verified (stored)" in res.stdout and "stored bytes only" in res.stderr
    [m] = manifests(backup_dir / "postgresql" / "logical" / "app")
    assert_stored_level(m)
    # an explicit verify with that identity is a key problem: exit 8, not recorded
    res = run_seawall(["postgres", "verify", "latest"], env)
    assert res.returncode == 8 and "none of the configured identities" in res.stderr
