"""A local primary with an S3 mirror (SeaweedFS), for real: the PostgreSQL cycle,
the mirror SIGKILLed mid-upload and completed by ``seawall sync``, and an S3
repository killed mid-write through the mirroring wrapper.

docs/object-storage.md ("Mirrors and sync") states the rules these prove.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seawall.catalog import Catalog
from seawall.errors import StorageError
from seawall.storage.factory import open_repository, open_storage
from seawall.storage.mirror import MirroredStorage
from seawall.storage.mirror_layout import mirror_id, pending_prefix
from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, db_state, seawall_env
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

MIB = 1024 * 1024


def s3_env(server: S3Server, **extra: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": "us-east-1",
        **extra,
    }


def bucket_keys(server: S3Server, bucket: str, prefix: str = "repo/") -> dict[str, int]:
    client = server.client()
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) :]] = obj["Size"]
    return out


def in_progress_uploads(server: S3Server, bucket: str) -> list[str]:
    res = server.client().list_multipart_uploads(Bucket=bucket)
    return [u["Key"] for u in res.get("Uploads", [])]


def pending_records(backup_dir: Path, mirror: str) -> list[str]:
    root = backup_dir / pending_prefix(mirror_id(mirror))
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def only_manifest(backup_dir: Path, db: str) -> dict[str, Any]:
    [path] = (backup_dir / "postgresql" / "logical" / db).glob("*/manifest.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_local_primary_and_s3_mirror_full_cycle(
    pg: PgCluster,
    backup_dir: Path,
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    bucket = bucket_factory(s3_server)
    mirror = f"s3://{bucket}/repo"
    pg.psql("CREATE DATABASE shop")
    pg.psql(SMALL_SQL, "shop")
    expected = db_state(pg, "shop")
    env = seawall_env(pg, backup_dir, MIRRORS=mirror, **s3_env(s3_server))

    res = run_seawall(["postgres", "backup", "--database", "shop"], env)
    assert res.returncode == 0, res.stderr
    m = only_manifest(backup_dir, "shop")
    prefix = f"postgresql/logical/shop/{m['id']}"
    primary_files = {
        str(p.relative_to(backup_dir)): p.stat().st_size for p in (backup_dir / prefix).iterdir()
    }
    in_mirror = bucket_keys(s3_server, bucket)
    assert {k: v for k, v in in_mirror.items() if k.startswith(prefix)} == primary_files
    # the verified manifest (rewritten after the backup's verification) is the mirror's too
    body = s3_server.client().get_object(Bucket=bucket, Key=f"repo/{prefix}/manifest.json")
    assert json.loads(body["Body"].read()) == m
    assert pending_records(backup_dir, mirror) == []

    res = run_seawall(["postgres", "verify", "latest", "--deep"], env)
    assert res.returncode == 0, res.stderr

    # a flipped byte in the primary's dump: restore reads the mirror's copy and says so
    dump = next(a for a in m["artifacts"] if a["role"] == "dump")
    path = backup_dir / prefix / dump["name"]
    good = path.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x10
    path.write_bytes(bytes(bad))
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "shop_flip"], env)
    assert res.returncode == 0, res.stderr
    assert f"mirror {mirror}" in res.stderr and "good copy" in res.stderr
    assert db_state(pg, "shop_flip")["contents"] == expected["contents"]

    # the primary's copy gone: verify --deep and restore both come from the mirror
    path.unlink()
    res = run_seawall(["postgres", "verify", "latest", "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert f"mirror {mirror}" in res.stderr
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "shop_gone"], env)
    assert res.returncode == 0, res.stderr
    assert db_state(pg, "shop_gone")["contents"] == expected["contents"]
    # without the mirror the same restore fails: the mirror was really used
    plain = {k: v for k, v in env.items() if k != "MIRRORS"}
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "shop_none"], plain)
    assert res.returncode != 0
    path.write_bytes(good)

    # prune: the same decision on both repositories, the manifest first
    res = run_seawall(["postgres", "backup", "--database", "shop"], env)
    assert res.returncode == 0, res.stderr
    prune_env = {**env, "RETENTION_LAST": "1", "RETENTION_DAYS": "0", "RETENTION_WEEKS": "0"}
    prune_env["RETENTION_MONTHS"] = "0"
    res = run_seawall(["prune"], prune_env)
    assert res.returncode == 0, res.stderr
    assert not (backup_dir / prefix).exists()
    left = bucket_keys(s3_server, bucket)
    assert not any(k.startswith(prefix) for k in left), left
    newest = only_manifest(backup_dir, "shop")
    assert f"postgresql/logical/shop/{newest['id']}/manifest.json" in left
    assert pending_records(backup_dir, mirror) == []


def test_mirror_killed_mid_upload_is_recorded_and_sync_completes_it(
    pg: PgCluster,
    backup_dir: Path,
    own_s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    server = own_s3_server
    bucket = bucket_factory(server)
    mirror = f"s3://{bucket}/repo"
    pg.psql("CREATE DATABASE big")
    # ~32 MiB of incompressible bytes: the mirror's copy is a multipart upload of several parts
    pg.psql(
        "CREATE TABLE blob AS SELECT g, sha256(g::text::bytea) || sha256((g + 1)::text::bytea) AS b "
        "FROM generate_series(1, 500000) g",
        "big",
    )
    env = seawall_env(pg, backup_dir, MIRRORS=mirror, MIRROR_TIMEOUT="5", **s3_env(server))
    killed = threading.Event()

    def kill_mid_upload() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if any(k.endswith(".pgdump.zst") for k in in_progress_uploads(server, bucket)):
                    server.kill()  # SIGKILL while the dump's multipart upload is in flight
                    killed.set()
                    return
            except Exception:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_mid_upload, daemon=True)
    watcher.start()
    res = run_seawall(["postgres", "backup", "--database", "big"], env)
    watcher.join(timeout=5)
    assert killed.is_set(), "the dump's upload to the mirror was never seen in flight"
    # the primary decides: the backup succeeded and is whole there
    assert res.returncode == 0, res.stderr
    m = only_manifest(backup_dir, "big")
    assert m["status"] == "success"
    assert "recorded as lagging" in res.stderr and mirror in res.stderr
    prefix = f"postgresql/logical/big/{m['id']}"
    recorded = pending_records(backup_dir, mirror)
    assert f"{prefix}/manifest.json" in recorded
    assert any(r.startswith(f"{prefix}/dump") for r in recorded)

    server.start()  # same ports and data
    # nothing half-uploaded is a backup in the mirror: no manifest there
    assert not any(k.endswith("manifest.json") for k in bucket_keys(server, bucket))
    # (the catalog scan `postgres list` runs, over the mirror alone)
    assert Catalog(open_storage(mirror, s3_env(server))).scan().manifests == []

    res = run_seawall(["sync", "--dry-run", "--json"], env)
    assert res.returncode == 0, res.stderr
    [plan] = json.loads(res.stdout)["mirrors"]
    assert plan["copied"][-1]["key"].endswith("manifest.json")  # manifests last
    res = run_seawall(["sync", "--json"], env)
    assert res.returncode == 0, res.stderr
    [done] = json.loads(res.stdout)["mirrors"]
    assert done["complete"] and done["failed"] == []
    copied = [c["key"] for c in done["copied"]]
    assert copied[-1] == f"{prefix}/manifest.json"
    assert any(k.startswith(f"{prefix}/dump") for k in copied)
    assert pending_records(backup_dir, mirror) == []
    in_mirror = bucket_keys(server, bucket)
    for p in (backup_dir / prefix).iterdir():
        assert in_mirror[f"{prefix}/{p.name}"] == p.stat().st_size
    # the mirror alone now restores the backup (the runbook's path)
    shutil.rmtree(backup_dir / "postgresql")
    res = run_seawall(["sync", "--json"], env)
    assert res.returncode == 0, res.stderr  # never deletes from a mirror what the primary lost
    assert f"{prefix}/manifest.json" in bucket_keys(server, bucket)


def test_s3_repository_killed_mid_write_leaves_nothing(
    tmp_path: Path, own_s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    """An S3 primary SIGKILLed mid-upload: the write fails with one clear line, and neither
    the primary nor the mirror shows the object once the server is back."""
    server = own_s3_server
    bucket = bucket_factory(server)
    env = s3_env(server)
    repo = open_repository(f"s3://{bucket}/repo", [str(tmp_path / "mirror")], env=env)
    assert isinstance(repo, MirroredStorage)
    from seawall.storage.s3.retry import RetryPolicy

    repo.primary.policy = RetryPolicy(deadline=5.0)  # type: ignore[attr-defined]
    chunk = os.urandom(MIB)
    with (
        pytest.raises(StorageError) as info,
        repo.open_atomic_write("postgresql/logical/app/x/dump.bin") as fh,
    ):
        for i in range(64):
            fh.write(chunk)
            if i == 20:
                server.kill()
    text = str(info.value)
    assert "\n" not in text and server.secret_key not in text
    assert "S3" in text or "s3://" in text
    server.start()
    assert "postgresql/logical/app/x/dump.bin" not in bucket_keys(server, bucket)
    assert not (tmp_path / "mirror" / "postgresql").exists()


def test_general_wal_push_mirrors_or_records_and_never_waits_twice(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backup_dir: Path,
    own_s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    """The general wal-push path (COMPRESSION=none goes there, ADR 0002): the segment is
    durable in the primary first; the mirror gets it, or a record; a dead mirror costs
    one short timeout, then later pushes skip it at once until ``sync`` closes the gap.

    The mirror is reached through a relay that counts connections: "skipped at once"
    is shown as no connection at all to the dead mirror, not as a shorter time."""
    from tests.conftest import SEAWALL
    from tests.integration.wal.test_wal_lean_push import env_for, make_segment
    from tests.support.faultproxy import FaultProxy

    server = own_s3_server
    bucket = bucket_factory(server)
    mirror = f"s3://{bucket}/repo"
    relay = FaultProxy(server.ports["s3"])  # relays every connection (to nothing when down)
    request.addfinalizer(relay.close)
    env = env_for(backup_dir, "unused", COMPRESSION="none", ENCRYPTION="false")
    del env["ENCRYPTION_RECIPIENTS"]
    env.update(s3_env(server), MIRRORS=mirror, AWS_ENDPOINT_URL=relay.endpoint)

    def push(name: str) -> tuple[subprocess.CompletedProcess[str], int]:
        """wal-push of a new segment; (its result, its connections to the mirror)."""
        seg = make_segment(tmp_path, name, seed=int(name[-1]))
        before = relay.connections
        res = subprocess.run(
            [SEAWALL, "postgres", "wal-push", str(seg)], env=env, capture_output=True, text=True
        )
        return res, relay.connections - before

    res, tried = push("000000010000000000000003")
    assert tried > 0  # the relay is on the mirror's path
    assert res.returncode == 0, res.stderr
    wal_keys = [k for k in bucket_keys(server, bucket) if k.startswith("postgresql/wal/")]
    assert any("000000010000000000000003" in k for k in wal_keys)
    assert pending_records(backup_dir, mirror) == []

    server.kill()
    res, tried = push("000000010000000000000004")
    assert res.returncode == 0, res.stderr  # the primary decides: PostgreSQL may recycle it
    assert "recorded as lagging" in res.stderr
    assert tried > 0  # it did try the dead mirror
    res, tried = push("000000010000000000000005")
    assert res.returncode == 0, res.stderr
    assert "is down" in res.stderr  # another process's failure: not waited for again
    assert tried == 0, f"the next push tried the mirror marked down ({tried} connections)"
    recorded = pending_records(backup_dir, mirror)
    assert [r for r in recorded if "0004" in r] and [r for r in recorded if "0005" in r]

    server.start()
    res = run_seawall(["sync", "--json"], {**env, "LOG_FORMAT": "text"})
    assert res.returncode == 0, res.stderr
    assert pending_records(backup_dir, mirror) == []
    wal_keys = [k for k in bucket_keys(server, bucket) if k.startswith("postgresql/wal/")]
    for seg in ("0003", "0004", "0005"):
        assert any(f"00000001000000000000{seg}" in k for k in wal_keys), wal_keys
    assert not (backup_dir / "mirrors" / mirror_id(mirror) / "down").exists()
    res, _ = push("000000010000000000000006")  # the marker is gone: mirrored at once again
    assert res.returncode == 0 and "lagging" not in res.stderr, res.stderr
    assert pending_records(backup_dir, mirror) == []

    # wal-fetch: a segment gone from the primary, another with a flipped byte there,
    # both come from the mirror, which stderr names; without MIRRORS they fail
    def fetch(name: str, fetch_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        dest = tmp_path / f"restored-{name}"
        dest.unlink(missing_ok=True)
        return subprocess.run(
            [SEAWALL, "postgres", "wal-fetch", name, str(dest)],
            env=fetch_env,
            capture_output=True,
            text=True,
        )

    wal_root = backup_dir / "postgresql" / "wal" / "main"
    (gone,) = wal_root.rglob("000000010000000000000004-*")
    gone.unlink()
    (flipped,) = wal_root.rglob("000000010000000000000005-*")
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    plain = {k: v for k, v in env.items() if k != "MIRRORS"}
    for name in ("000000010000000000000004", "000000010000000000000005"):
        assert fetch(name, plain).returncode != 0
        res = fetch(name, env)
        assert res.returncode == 0, res.stderr
        assert f"mirror {mirror}" in res.stderr
        assert (tmp_path / f"restored-{name}").read_bytes() == (tmp_path / name).read_bytes()
    res = fetch("000000010000000000000009", env)  # in no repository: the quiet exit 1
    assert res.returncode == 1 and res.stderr == "", res.stderr
