"""A mirror that hangs — accepts connections, never answers — holds no write
longer than ``MIRROR_TIMEOUT`` (issue 14: "a failure mode with no direct test").

A mirror that refuses connections fails at once; one that is stuck (a frozen
server, a black-holed route behind a load balancer that still accepts) used
to hold each write for S3's 60 s read timeout, whatever ``MIRROR_TIMEOUT``
said. The proxy in front of a real SeaweedFS swallows every request and
answers none (tests/support/faultproxy.py, ``"hang"``). The bound asserted
is loose (a multiple of the timeout, far below 60 s) so load cannot break it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seawall.storage.factory import open_repository
from seawall.storage.mirror import MirroredStorage
from seawall.storage.mirror_layout import down_marker, mirror_id
from tests.integration.storage.test_mirrors_s3 import (
    bucket_keys,
    in_progress_uploads,
    pending_records,
    s3_env,
)
from tests.support.faultproxy import FaultProxy
from tests.support.s3server import S3Server

MIB = 1024 * 1024
TIMEOUT = 2.0
#: far below S3's 60 s read timeout (what a write waited before the bound)
BOUND = 20.0


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    fp = FaultProxy(port)
    yield fp
    fp.close()


def mirrored(tmp_path: Path, server: S3Server, proxy: FaultProxy, bucket: str) -> MirroredStorage:
    env = {**s3_env(server), "AWS_ENDPOINT_URL": proxy.endpoint}
    repo = open_repository(
        str(tmp_path / "repo"), [f"s3://{bucket}/repo"], env=env, mirror_timeout=TIMEOUT
    )
    assert isinstance(repo, MirroredStorage)
    return repo


@pytest.mark.parametrize("size", [1024, 20 * MIB], ids=["small", "multipart"])
def test_a_hung_mirror_holds_a_write_about_mirror_timeout_then_is_down(
    tmp_path: Path,
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
    proxy: FaultProxy,
    size: int,
) -> None:
    bucket = bucket_factory(s3_server)
    proxy.always = "hang"
    repo = mirrored(tmp_path, s3_server, proxy, bucket)
    mirror = repo.mirrors[0].location
    data = os.urandom(size)

    t0 = time.monotonic()
    with repo.open_atomic_write("postgresql/logical/app/x/dump.bin") as fh:
        fh.write(data)
    first = time.monotonic() - t0
    assert first < BOUND, f"a hung mirror held the write {first:.1f}s (MIRROR_TIMEOUT {TIMEOUT}s)"
    assert proxy.connections >= 1  # it did reach the stuck server
    # the primary decided: the object is there, the miss is recorded, the mirror is down
    assert (tmp_path / "repo/postgresql/logical/app/x/dump.bin").read_bytes() == data
    assert pending_records(tmp_path / "repo", mirror) == ["postgresql/logical/app/x/dump.bin"]
    assert (tmp_path / "repo" / down_marker(mirror_id(mirror))).is_file()

    t0 = time.monotonic()
    repo.write_bytes("postgresql/logical/app/x/manifest.json", b"{}")
    assert time.monotonic() - t0 < TIMEOUT  # down for the rest of the run: not waited for again
    assert len(pending_records(tmp_path / "repo", mirror)) == 2

    proxy.always = "pass"  # the server answers again: nothing half-written is visible
    assert bucket_keys(s3_server, bucket) == {}


def test_a_mirror_that_hangs_mid_upload_is_bounded_too(
    tmp_path: Path,
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
    proxy: FaultProxy,
) -> None:
    """The upload starts (the first connection answers), then every new connection — the
    parts' — hangs: the parts time out, the upload is aborted, the write goes on."""
    bucket = bucket_factory(s3_server)
    proxy.plan.append("pass")
    proxy.after = "hang"
    repo = mirrored(tmp_path, s3_server, proxy, bucket)
    t0 = time.monotonic()
    with repo.open_atomic_write("postgresql/logical/app/y/dump.bin") as fh:
        fh.write(os.urandom(20 * MIB))
    elapsed = time.monotonic() - t0
    assert elapsed < BOUND, f"a mirror hanging mid-upload held the write {elapsed:.1f}s"
    assert proxy.faults >= 1
    assert pending_records(tmp_path / "repo", repo.mirrors[0].location) == [
        "postgresql/logical/app/y/dump.bin"
    ]
    proxy.after = "pass"
    assert bucket_keys(s3_server, bucket) == {}
    assert in_progress_uploads(s3_server, bucket) == []  # aborted over the live connection


def test_general_wal_push_with_a_hung_mirror_is_not_held(
    tmp_path: Path,
    backup_dir: Path,
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
    proxy: FaultProxy,
) -> None:
    """The archive must not stall on a stuck mirror: PostgreSQL hears "archived" after
    at most min(MIRROR_TIMEOUT, 5 s) of waiting, not S3's 60 s read timeout."""
    from tests.conftest import SEAWALL
    from tests.integration.wal.test_wal_lean_push import env_for, make_segment

    bucket = bucket_factory(s3_server)
    proxy.always = "hang"
    mirror = f"s3://{bucket}/repo"
    env = env_for(backup_dir, "unused", COMPRESSION="none", ENCRYPTION="false")
    del env["ENCRYPTION_RECIPIENTS"]
    env.update(s3_env(s3_server), AWS_ENDPOINT_URL=proxy.endpoint, MIRRORS=mirror)
    seg = make_segment(tmp_path, "000000010000000000000003", seed=3)
    t0 = time.monotonic()
    res = subprocess.run(
        [SEAWALL, "postgres", "wal-push", str(seg)], env=env, capture_output=True, text=True
    )
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert "recorded as lagging" in res.stderr
    assert elapsed < BOUND + 10, f"wal-push held {elapsed:.1f}s by a hung mirror"
    assert [r for r in pending_records(backup_dir, mirror) if "0003" in r]
