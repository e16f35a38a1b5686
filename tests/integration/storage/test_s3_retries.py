"""Retries for real: 503 SlowDown answers, connection resets and a response cut
mid-body, injected by a TCP proxy in front of SeaweedFS (tests/support/faultproxy.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from seawall.errors import StorageError
from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.support.faultproxy import FaultProxy
from tests.support.s3server import S3Server

MIB = 1024 * 1024


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[FaultProxy]:
    p = FaultProxy(s3_server.ports["s3"])
    yield p
    p.close()


def _via(proxy: FaultProxy, server: S3Server, bucket: str, deadline: float) -> S3Storage:
    return S3Storage(
        f"s3://{bucket}/r",
        endpoint_url=proxy.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        part_size=5 * MIB,
        retry=RetryPolicy(deadline=deadline, base=0.05, cap=0.5),
    )


def test_throttling_is_retried(
    s3_server: S3Server, proxy: FaultProxy, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    storage = _via(proxy, s3_server, bucket, deadline=60)
    proxy.plan.extend(["503", "503", "503"])
    storage.write_bytes("m.json", b"{}")
    assert proxy.faults == 3
    assert storage.read_bytes("m.json") == b"{}"


def test_connection_resets_are_retried_on_multipart(
    s3_server: S3Server, proxy: FaultProxy, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    storage = _via(proxy, s3_server, bucket, deadline=60)
    proxy.plan.extend(["reset", "pass", "reset", "503", "reset"])
    body = os.urandom(11 * MIB)
    with storage.open_atomic_write("big") as fh:
        fh.write(body)
    assert proxy.faults == 4
    assert storage.read_bytes("big") == body
    assert list(storage.list_partials("")) == []


def test_retries_are_bounded_in_time(
    s3_server: S3Server, proxy: FaultProxy, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    storage = _via(proxy, s3_server, bucket, deadline=2.0)
    proxy.always = "503"
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        storage.write_bytes("m.json", b"{}")
    elapsed = time.monotonic() - started
    assert "SlowDown" in str(info.value) and "gave up after" in str(info.value)
    assert proxy.faults >= 3  # retried, with backoff
    assert elapsed < 30  # bounded (generous: a loaded machine)
    proxy.always = None
    assert not _via(proxy, s3_server, bucket, deadline=30).exists("m.json")


def test_read_cut_mid_body_resumes_where_it_stopped(
    s3_server: S3Server, proxy: FaultProxy, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    body = os.urandom(12 * MIB)
    s3_server.client().put_object(Bucket=bucket, Key="r/obj", Body=body)
    storage = _via(proxy, s3_server, bucket, deadline=60)
    proxy.plan.extend([("cut", 3 * MIB)])
    got = bytearray()
    with storage.open_read("obj") as fh:
        while chunk := fh.read(MIB):
            got += chunk
    assert proxy.faults == 1 and proxy.connections >= 2
    assert bytes(got) == body


@pytest.mark.parametrize("part_checksum", ["CRC32", "SHA256", None])
@pytest.mark.parametrize("size", [1 * MIB, 11 * MIB])
def test_a_body_damaged_on_the_wire_is_refused_and_resent(
    s3_server: S3Server,
    proxy: FaultProxy,
    bucket_factory: Callable[[S3Server], str],
    part_checksum: str | None,
    size: int,
) -> None:
    """One bit flipped in a part (or single put) on its way to the server: the
    server refuses it and the retry stores the right bytes. With checksums on,
    bodies are sent as UNSIGNED-PAYLOAD (no second sha256 pass in Python): the
    signed checksum header is what catches the damage (x-amz-checksum-crc32 on
    parts by default, -sha256 on a single put or with part_checksum="SHA256");
    with checksums off, the SigV4 payload hash does."""
    checksums = part_checksum is not None
    bucket = bucket_factory(s3_server)
    storage = S3Storage(
        f"s3://{bucket}/r",
        endpoint_url=proxy.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        part_size=5 * MIB,
        checksums=checksums,
        part_checksum=part_checksum or "CRC32",
        retry=RetryPolicy(deadline=60, base=0.05, cap=0.5),
    )
    signs = storage.data_client.meta.config.s3.get("payload_signing_enabled", True)
    assert signs is (not checksums)
    # connection 1: the first request (PutObject, or CreateMultipartUpload and
    # then maybe part 1); connection 2 only ever carries parts
    flips = [("flip", 512 * 1024), ("flip", 2 * MIB)] if size > 5 * MIB else [("flip", 4096)]
    proxy.plan.extend(flips)
    body = os.urandom(size)
    with storage.open_atomic_write("obj") as fh:
        fh.write(body)
    assert proxy.faults >= 1
    assert storage.read_bytes("obj") == body
