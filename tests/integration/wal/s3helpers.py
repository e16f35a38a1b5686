"""Shared pieces of the WAL-on-S3 tests (test_wal_push_s3.py, test_wal_fetch_s3.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.integration.storage.conftest import new_bucket, own_s3_server, s3_server
from tests.integration.wal.helpers import wait_archived
from tests.integration.wal.test_wal_fast_imports import segment
from tests.support.s3server import S3Server

__all__ = ["new_bucket", "own_s3_server", "s3_server", "wait_archived"]


def _env(server: S3Server, url: str, public: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEAWALL_", "ENCRYPTION", "AWS_", "BACKUP_DIR"))
    }
    env.update(
        BACKUP_DIR=url,
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_ENDPOINT_URL=server.endpoint,
        SEAWALL_WAL_S3_DEADLINE="5",
    )
    if public:
        env.update(ENCRYPTION="true", ENCRYPTION_RECIPIENTS=public)
    env.update(extra)
    return env


def _segment_in(directory: Path, name: str) -> Path:
    """A synthetic segment ``name`` in its own directory (random content each time)."""
    directory.mkdir(exist_ok=True)
    return segment(directory, name)


def _push(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEAWALL, "postgres", "wal-push", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _keys(server: S3Server, bucket: str) -> dict[str, int]:
    page = server.client().list_objects_v2(Bucket=bucket)
    return {o["Key"]: o["Size"] for o in page.get("Contents", [])}


def _get(server: S3Server, bucket: str, key: str) -> bytes:
    """GetObject with the checking client; SeaweedFS answers 500 InternalError for a
    few moments after a restart (its volume server registers late): retried for
    30 s, so the check reads the stored object instead of tripping over that."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + 30
    while True:
        try:
            body: bytes = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("InternalError", "ServiceUnavailable") or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _decode(server: S3Server, bucket: str, key: str, identity: Path | None) -> bytes:
    """The raw file back, with the stock tools (age, zstd), checked against its name."""
    blob = _get(server, bucket, key)
    if identity is not None:
        blob = subprocess.run(
            ["age", "-d", "-i", str(identity)], input=blob, capture_output=True, check=True
        ).stdout
    raw = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout
    sha = key.rsplit("/", 1)[1].split("-", 1)[1][:40]
    assert hashlib.sha256(raw).hexdigest()[:40] == sha, f"{key} does not hold its named content"
    return raw


def _fetch(name: str, dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEAWALL, "postgres", "wal-fetch", name, str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A directory the postgres user can read (the secret file lives there)."""
    path = Path(tempfile.mkdtemp(prefix="seawall-s3wal-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
