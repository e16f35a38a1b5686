"""Compression × encryption round trips, and interoperability with the
stock ``age`` and ``zstd`` CLIs in both directions."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import (
    SMALL_SQL,
    backup_folder,
    db_state,
    manifests,
    seawall_env,
)
from tests.support.pgcluster import PgCluster, make_cluster

PASSPHRASE = "correct horse battery staple 42"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = make_cluster()
    c.psql("CREATE DATABASE items")
    c.psql(SMALL_SQL, "items")
    yield c
    c.destroy()


def _crypto_env(mode: str, key: Path, public: str) -> dict[str, str]:
    if mode == "x25519":
        return {
            "ENCRYPTION": "true",
            "ENCRYPTION_RECIPIENTS": public,
            "ENCRYPTION_IDENTITY_FILE": str(key),
        }
    if mode == "passphrase":
        return {"ENCRYPTION": "true", "ENCRYPTION_KEY": PASSPHRASE}
    return {"ENCRYPTION": "false"}


@pytest.mark.parametrize("encryption", ["none", "x25519", "passphrase"])
@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_matrix_round_trip(
    cluster: PgCluster,
    backup_dir: Path,
    age_keys: tuple[Path, str],
    compression: str,
    encryption: str,
) -> None:
    key, public = age_keys
    env = seawall_env(
        cluster, backup_dir, COMPRESSION=compression, **_crypto_env(encryption, key, public)
    )
    res = run_seawall(["postgres", "backup", "-d", "items"], env)
    assert res.returncode == 0, res.stderr
    [m] = manifests(backup_dir, "items")
    dump = next(a for a in m["artifacts"] if a["role"] == "dump")
    assert dump["compression"] == compression
    expected_mode = {"none": None, "x25519": "x25519", "passphrase": "scrypt"}[encryption]
    assert (dump["encryption"] or {}).get("mode") == expected_mode
    assert m["verification"]["ok"] is True
    stored = (backup_folder(backup_dir, "items", m["id"]) / dump["name"]).read_bytes()
    if encryption != "none":
        assert stored.startswith(b"age-encryption.org/v1\n")
    elif compression == "zstd":
        assert stored.startswith(b"\x28\xb5\x2f\xfd")
    elif compression == "gzip":
        assert stored.startswith(b"\x1f\x8b")
    else:
        assert stored.startswith(b"PGDMP")

    target = f"items_{compression}_{encryption}"
    res = run_seawall(["postgres", "restore", m["id"], "--target-db", target], env)
    assert res.returncode == 0, res.stderr
    assert db_state(cluster, target)["contents"] == db_state(cluster, "items")["contents"]
    assert db_state(cluster, target)["large_objects"] == db_state(cluster, "items")["large_objects"]


def test_backup_decrypts_with_stock_age_cli(
    cluster: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = age_keys
    env = seawall_env(cluster, backup_dir, **_crypto_env("x25519", key, public))
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    [m] = manifests(backup_dir, "items")
    folder = backup_folder(backup_dir, "items", m["id"])
    # pg_restore --list stops reading after the TOC (SIGPIPE upstream), so decode to a file.
    pipeline = (
        f"age -d -i {key} {folder}/dump.pgdump.zst.age | zstd -d -q -o {tmp_path}/d.pgdump && "
        f"{cluster.bin_dir}/pg_restore --list {tmp_path}/d.pgdump"
    )
    res = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "TABLE DATA public items" in res.stdout
    globals_sql = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"age -d -i {key} {folder}/globals.sql.zst.age | zstd -d"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CREATE ROLE postgres" in globals_sql


def test_hand_made_age_zstd_dump_restores_through_seawall(
    cluster: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = age_keys
    dump = tmp_path / "manual.pgdump.zst.age"
    pipeline = f"{cluster.bin_dir}/pg_dump -Fc -d items | zstd -q -T0 | age -r {public} > {dump}"
    subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], env=cluster.env(), check=True)
    env = seawall_env(cluster, backup_dir, ENCRYPTION_IDENTITY_FILE=str(key))
    res = run_seawall(["postgres", "verify", str(dump)], env)
    assert res.returncode == 0, res.stderr
    res = run_seawall(
        ["postgres", "restore", str(dump), "--target-db", "items_manual", "--jobs", "2"], env
    )
    assert res.returncode == 0, res.stderr
    assert db_state(cluster, "items_manual")["contents"] == db_state(cluster, "items")["contents"]
