"""The asynchronous pusher keeps its S3 connections open from segment to segment.

A relay (tests/support/faultproxy.py, passing everything) in front of a real
SeaweedFS counts the TCP connections: the pusher archiving 8 segments ahead
opens at most one per push in flight (``PUSH_WORKERS``), where a connection
per segment was 8; every segment is still stored, once, with its content.
A connection the server drops between two segments is reopened.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall.runner.wal_pusher import PUSH_WORKERS
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.integration.wal.asynchelpers import (
    done,
    markers,
    name_of,
    pusher_pids,
    ready,
    wait_for,
    wal_push,
)  # fmt: skip
from tests.integration.wal.s3helpers import _decode, _env, _keys
from tests.support.faultproxy import FaultProxy
from tests.support.s3server import S3Server

__all__ = ["s3_server"]  # fixture used by name below


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    yield path
    for pid in pusher_pids(path):
        os.kill(pid, signal.SIGKILL)


def test_the_pusher_reuses_its_connections(
    s3_server: S3Server, root: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    bucket = new_bucket(s3_server)
    proxy = FaultProxy(s3_server.ports["s3"])
    env = _env(
        s3_server, f"s3://{bucket}/a", public, AWS_ENDPOINT_URL=proxy.endpoint,
        WAL_PUSH_AHEAD="8", WAL_PUSH_AHEAD_IDLE="600",
    )  # fmt: skip
    names = [name_of(0x40 + i) for i in range(10)]
    content = ready(root, names)
    try:
        first = wal_push(root, names[0], env)
        assert first.returncode == 0 and first.stderr == "", first.stderr
        done(root, names[0])
        wait_for(lambda: markers(root) == names[1:9], 180, "the pusher's 8 markers")
        # the foreground push's own connection, and one per push in flight
        assert proxy.connections <= 1 + PUSH_WORKERS, proxy.connections
        # the server drops the kept connections (an idle timeout, a restart): the
        # pusher's next push, asked for by the next wal-push, connects again
        before = proxy.connections
        assert proxy.drop_live() >= 1
        res = wal_push(root, names[1], env)  # a hit; the pusher now looks 8 past it
        assert res.returncode == 0 and res.stderr == "", res.stderr
        wait_for(lambda: names[9] in markers(root), 180, "the marker of the last segment")
        assert proxy.connections > before
        done(root, names[1])
        for name in names[2:]:
            res = wal_push(root, name, env)
            assert res.returncode == 0 and res.stderr == "", (name, res.stderr)
            done(root, name)
    finally:
        for pid in pusher_pids(root):
            os.kill(pid, signal.SIGKILL)
        proxy.close()
    for name in names:
        (stored,) = [k for k in _keys(s3_server, bucket) if f"/{name}-" in k]
        assert _decode(s3_server, bucket, stored, key) == content[name]
