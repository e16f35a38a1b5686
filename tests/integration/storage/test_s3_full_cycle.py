"""Issue 14: the full cycle with object storage as the only repository.

``BACKUP_DIR=s3://bucket/prefix`` on a real S3 server (SeaweedFS ``weed
mini``), credentials through the standard AWS variables (and their
``*_FILE`` variants where PostgreSQL's archive_command runs), every command
through the installed console script as an operator runs it: logical backup,
``verify --deep``, restore, prune; a base backup with WAL pushed by a real
archive_command (the general wal-push path, through the Storage protocol)
and a point-in-time restore whose restore_command reads the bucket; a Qdrant
snapshot backed up and restored. Nothing is written to a local folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEAWALL, run_seawall
from tests.integration.storage.conftest import new_bucket
from tests.integration.wal.helpers import Archived, now_utc, pitr, wait_archived
from tests.qdrant_server.fixtures import qdrant_server  # noqa: F401
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

PREFIX = "team/seawall"


def aws_env(server: S3Server, *, read_only: bool = False) -> dict[str, str]:
    ak, sk = (
        (server.ro_access_key, server.ro_secret_key)
        if read_only
        else (server.access_key, server.secret_key)
    )
    return {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": ak,
        "AWS_SECRET_ACCESS_KEY": sk,
        "AWS_REGION": "us-east-1",
    }


def _clean(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(("AWS_", "S3_"))}


def keys_in(server: S3Server, bucket: str, prefix: str = "") -> list[str]:
    client = server.client()
    keys: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, **token)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return sorted(keys)
        token = {"ContinuationToken": page["NextContinuationToken"]}


@pytest.fixture
def cwd(tmp_path: Path) -> Iterator[Path]:
    """Run from an empty directory: before issue 14 ``BACKUP_DIR=s3://…`` wrote
    into a local folder named ``s3:`` under the current directory."""
    old = os.getcwd()
    here = tmp_path / "cwd"
    here.mkdir()
    os.chdir(here)
    try:
        yield here
    finally:
        os.chdir(old)


def test_logical_backup_verify_restore_prune_with_s3_as_the_only_repository(
    pg: PgCluster, s3_server: S3Server, age_keys: tuple[Path, str], cwd: Path
) -> None:
    key, public = age_keys
    bucket = new_bucket(s3_server)
    repo = f"s3://{bucket}/{PREFIX}"
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);"
        "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g",
        db="app",
    )
    env = pg.env(
        BACKUP_DIR=repo,
        DB_NAME="app",
        LOG_FORMAT="json",
        PRUNE_AFTER_BACKUP="false",
        ENCRYPTION="true",
        ENCRYPTION_RECIPIENTS=public,
        ENCRYPTION_IDENTITY_FILE=str(key),
        **aws_env(s3_server),
    )
    env = {**_clean(env), **{k: v for k, v in env.items() if k.startswith("AWS_")}}

    ids = []
    for _ in range(2):
        res = run_seawall(["postgres", "backup", "--json"], env)
        assert res.returncode == 0, res.stderr
        ids.append(json.loads(res.stdout)[0]["id"])
    stored = keys_in(s3_server, bucket, PREFIX + "/")
    manifests = [k for k in stored if k.endswith("/manifest.json")]
    assert len(manifests) == 2, stored
    assert all(k.startswith(f"{PREFIX}/postgresql/logical/app/") for k in manifests)
    # every lease (series lock) was released: no lock object left behind
    assert not [k for k in stored if "/.locks/" in k], stored
    assert not (cwd / "s3:").exists() and list(cwd.iterdir()) == []

    res = run_seawall(["postgres", "verify", "latest", "--deep", "--database", "app"], env)
    assert res.returncode == 0, res.stderr + res.stdout
    m = json.loads(s3_server.client().get_object(Bucket=bucket, Key=manifests[-1])["Body"].read())
    assert m["verification"]["ok"] is True and m["verification"]["deep"] is True

    res = run_seawall(
        ["postgres", "restore", "latest", "--database", "app", "--target-db", "app_back"], env
    )
    assert res.returncode == 0, res.stderr
    assert pg.psql("SELECT count(*), sum(id) FROM t", db="app_back") == "2000|2001000"

    listed = run_seawall(["postgres", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(b["id"] for b in json.loads(listed.stdout)) == sorted(ids)

    keep_one = {
        **env,
        "RETENTION_LAST": "1",
        "RETENTION_DAYS": "0",
        "RETENTION_WEEKS": "0",
        "RETENTION_MONTHS": "0",
        "RETENTION_YEARS": "0",
    }
    res = run_seawall(["prune", "--json"], keep_one)
    assert res.returncode == 0, res.stderr
    stored = keys_in(s3_server, bucket, PREFIX + "/")
    left = [k for k in stored if k.endswith("/manifest.json")]
    assert len(left) == 1 and max(ids) in left[0], stored
    # the dropped backup is gone whole (manifest first, then its artifacts)
    assert not [k for k in stored if f"/{min(ids)}/" in k], stored
    assert list(cwd.iterdir()) == []


def _secret_file(directory: Path, name: str, value: str) -> str:
    path = directory / name
    path.write_text(value)
    os.chmod(path, 0o600)
    shutil.chown(path, "postgres")
    return str(path)


@pytest.fixture
def secrets_dir() -> Iterator[Path]:
    """Credentials PostgreSQL's archive_command reads as AWS_*_FILE (owned by postgres)."""
    path = Path(tempfile.mkdtemp(prefix="seawall-aws-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class S3Archived(Archived):
    """A cluster whose archive_command pushes to ``s3://…`` (general wal-push path)."""

    server: S3Server

    def env(self, **extra: str) -> dict[str, str]:
        return _clean(super().env(**aws_env(self.server), **extra)) | aws_env(self.server)


def test_basebackup_wal_push_from_archive_command_and_pitr_from_s3(
    pg_factory: Callable[..., PgCluster],
    s3_server: S3Server,
    age_keys: tuple[Path, str],
    secrets_dir: Path,
    restores: list[Any],
) -> None:
    key, public = age_keys
    bucket = new_bucket(s3_server)
    repo = f"s3://{bucket}/{PREFIX}"
    ak = _secret_file(secrets_dir, "access-key", s3_server.access_key)
    sk = _secret_file(secrets_dir, "secret-key", s3_server.secret_key)
    command = (
        f"'env BACKUP_DIR={repo} PG_CLUSTER_NAME=main ENCRYPTION=true "
        f"ENCRYPTION_RECIPIENTS={public} AWS_ENDPOINT_URL={s3_server.endpoint} "
        f"AWS_ACCESS_KEY_ID_FILE={ak} AWS_SECRET_ACCESS_KEY_FILE={sk} "
        f"{SEAWALL} postgres wal-push %p'"
    )
    pg = pg_factory(
        extra_conf={"archive_mode": "on", "archive_command": command, "wal_keep_size": "0"}
    )
    arch = S3Archived(pg, repo, key, public)  # type: ignore[arg-type]
    arch.server = s3_server
    pg.psql("CHECKPOINT")
    first = arch.switch_and_wait(timeout=60)
    wal = [k for k in keys_in(s3_server, bucket, f"{PREFIX}/postgresql/wal/main/")]
    assert any(first in k for k in wal), wal
    assert f"{PREFIX}/postgresql/wal/main/archive.json" in wal
    # the claims' leases were released
    assert not keys_in(s3_server, bucket, f"{PREFIX}/.locks/"), "claims left behind"

    arch.basebackup()
    pg.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
    time.sleep(1.1)
    target = now_utc(pg)
    time.sleep(1.1)
    pg.psql("INSERT INTO t SELECT generate_series(101, 300)")
    last = arch.switch_and_wait(timeout=60)
    wait_archived(pg, last, 60)

    res = arch.seawall("postgres", "wal-check", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    # deep verification of the base backup: unpacked to a scratch directory
    # and pg_verifybackup run with its WAL fetched from the bucket, under a hold
    res = arch.seawall("postgres", "verify", "latest", "--base", "--deep")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not keys_in(s3_server, bucket, f"{PREFIX}/.locks/"), "a lock or hold left behind"

    restored, res = pitr(arch, "--target-time", target)
    restores.append(restored)
    assert restored.psql("SELECT count(*) FROM t") == "100"
    # the restore_command script carries no secret: the keys are private files
    sidecar = restored.base / ".data.seawall-recovery"
    text = (sidecar / "restore_command.sh").read_text()
    assert s3_server.secret_key not in text and s3_server.access_key not in text
    assert f"BACKUP_DIR={repo}" in text and "AWS_SECRET_ACCESS_KEY_FILE=" in text
    secret = sidecar / "aws_secret_access_key"
    assert secret.read_text().strip() == s3_server.secret_key
    assert secret.stat().st_mode & 0o777 == 0o600


def test_qdrant_backup_and_restore_with_s3_as_the_only_repository(
    qdrant_server: Any,  # noqa: F811
    s3_server: S3Server,
    cwd: Path,
) -> None:
    bucket = new_bucket(s3_server)
    qdrant_server.create_collection("docs", 8, points=120, seed=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT_", "SEAWALL_"))}
    env = _clean(env) | aws_env(s3_server)
    env.update(
        BACKUP_DIR=f"s3://{bucket}/{PREFIX}",
        QDRANT_URL=qdrant_server.url,
        ENGINES="qdrant",
        LOG_FORMAT="json",
        PRUNE_AFTER_BACKUP="false",
    )
    res = run_seawall(["qdrant", "backup", "docs", "--json"], env)
    assert res.returncode == 0, res.stderr
    stored = keys_in(s3_server, bucket, PREFIX + "/")
    [manifest] = [k for k in stored if k.endswith("/manifest.json")]
    assert manifest.startswith(f"{PREFIX}/qdrant/")
    backup_id = manifest.split("/")[-2]

    res = run_seawall(["qdrant", "verify", backup_id], env)
    assert res.returncode == 0, res.stderr + res.stdout
    res = run_seawall(["qdrant", "restore", backup_id, "--to", "docs_copy"], env)
    assert res.returncode == 0, res.stderr + res.stdout
    assert qdrant_server.points_count("docs_copy") == 120
    assert not keys_in(s3_server, bucket, f"{PREFIX}/.locks/"), "a lock or hold left behind"
    assert list(cwd.iterdir()) == []
