"""S3 failure modes provoked for real on SeaweedFS: wrong credentials, a missing
bucket, a read-only key, the server SIGKILLed mid-upload, a failing writer.

Each error is one line naming the fix, exit code 7 (StorageError), and never
contains the secret key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable

import pytest

from seawall.errors import StorageError
from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.support.s3server import S3Server

MIB = 1024 * 1024


def _storage(server: S3Server, bucket: str, **kw: object) -> S3Storage:
    args: dict[str, object] = {
        "endpoint_url": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "part_size": 5 * MIB,
        "retry": RetryPolicy(deadline=5.0),
    }
    args.update(kw)
    return S3Storage(f"s3://{bucket}/repo", **args)  # type: ignore[arg-type]


def _one_line(err: StorageError, *secrets: str) -> str:
    text = str(err)
    assert err.exit_code == 7
    assert "\n" not in text
    for secret in secrets:
        assert secret not in text
    return text


def test_wrong_credentials_one_line(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    wrong = "not-the-secret-" + "x" * 20
    storage = _storage(s3_server, bucket, secret_key=wrong)
    with pytest.raises(StorageError) as info:
        storage.write_bytes("m.json", b"{}")
    text = _one_line(info.value, wrong, s3_server.secret_key)
    assert "rejected the credentials" in text and "AWS_SECRET_ACCESS_KEY" in text
    with pytest.raises(StorageError) as info:
        list(storage.list(""))
    assert "rejected the credentials" in _one_line(info.value, wrong)
    storage = _storage(s3_server, bucket, access_key="AKIDUNKNOWN00000")
    with pytest.raises(StorageError) as info:
        storage.read_bytes("m.json")
    assert "rejected the credentials" in _one_line(info.value, s3_server.secret_key)


def test_missing_bucket_one_line(s3_server: S3Server) -> None:
    storage = _storage(s3_server, "no-such-bucket-here")
    for action in (
        lambda: storage.write_bytes("m.json", b"{}"),
        lambda: list(storage.list("")),
        lambda: storage.exists("m.json"),  # HEAD's bare 404 is not "no such object"
        lambda: storage.check_bucket(),
    ):
        with pytest.raises(StorageError) as info:
            action()
        text = _one_line(info.value, s3_server.secret_key)
        assert "no-such-bucket-here" in text and "does not exist" in text


def test_read_only_key_may_read_but_not_write(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    _storage(s3_server, bucket).write_bytes("m.json", b"{}")
    ro = _storage(
        s3_server, bucket, access_key=s3_server.ro_access_key, secret_key=s3_server.ro_secret_key
    )
    assert ro.read_bytes("m.json") == b"{}"
    assert [o.key for o in ro.list("")] == ["m.json"]
    for action in (
        lambda: ro.write_bytes("other.json", b"{}"),
        lambda: ro.write_bytes("big", b"b" * 6 * MIB),  # the multipart path
    ):
        with pytest.raises(StorageError) as info:
            action()
        text = _one_line(info.value, s3_server.ro_secret_key)
        assert "denied" in text and "read-write key" in text
    assert [o.key for o in ro.list("")] == ["m.json"]
    assert list(ro.list_partials("")) == []


def test_checksums_reach_the_server(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    """The server stored our sha256 (single put: a manifest's kind of object)
    and a composite of the parts' CRC32s (multipart; ADR 0011 addendum 3),
    with ``SHA256`` parts still available: the checksum headers were sent and
    checked on arrival. Every part was sent UNSIGNED-PAYLOAD (its checksum
    header is what the signature covers): no sha256 pass for SigV4."""
    bucket = bucket_factory(s3_server)
    storage = _storage(s3_server, bucket)
    payloads: list[str] = []
    storage.data_client.meta.events.register(
        "before-send.s3",
        lambda request, **_: payloads.append(request.headers["x-amz-content-sha256"].decode()),
    )
    storage.write_bytes("small", b"hello")
    client = s3_server.client()
    head = client.head_object(Bucket=bucket, Key="repo/small", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    big = os.urandom(6 * MIB)
    storage.write_bytes("big", big)
    head = client.head_object(Bucket=bucket, Key="repo/big", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32", "").endswith("-2"), head  # composite of two parts
    assert "ChecksumSHA256" not in head
    assert payloads == ["UNSIGNED-PAYLOAD"] * 3  # the single put and both parts
    sha = S3Storage(
        f"s3://{bucket}/repo",
        endpoint_url=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        part_size=5 * MIB,
        part_checksum="SHA256",
    )
    sha.write_bytes("big-sha", big)
    head = client.head_object(Bucket=bucket, Key="repo/big-sha", ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256", "").endswith("-2"), head
    assert storage.read_bytes("big") == sha.read_bytes("big-sha") == big


def _upload_then_kill(
    server: S3Server, storage: S3Storage, body: bytes, restart_after: float | None
) -> BaseException | None:
    """Write ``body``; after the first two parts have gone, SIGKILL the server
    (and, optionally, start it again on the same ports and data)."""
    error: BaseException | None = None
    try:
        with storage.open_atomic_write("b/dump.zst") as fh:
            fh.write(body[: 11 * MIB])  # parts 1 and 2 under way
            time.sleep(0.5)
            server.kill()
            restarter = None
            if restart_after is not None:
                restarter = threading.Timer(restart_after, server.start)
                restarter.start()
            fh.write(body[11 * MIB :])
            if restarter is not None:
                restarter.join()
    except StorageError as exc:
        error = exc
    return error


def test_server_killed_mid_upload_fails_cleanly(
    own_s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    server = own_s3_server
    bucket = bucket_factory(server)
    storage = _storage(server, bucket, retry=RetryPolicy(deadline=3.0))
    error = _upload_then_kill(server, storage, os.urandom(20 * MIB), restart_after=None)
    assert isinstance(error, StorageError)
    text = _one_line(error, server.secret_key)
    assert "cannot reach S3" in text and "server is up" in text
    server.start()
    storage = _storage(server, bucket)
    assert not storage.exists("b/dump.zst")
    assert [o.key for o in storage.list("")] == []
    # the abort could not reach the dead server: the upload is a temporary
    # that listing reports and deleting it (what prune does) aborts it
    leftovers = list(storage.list_partials(""))
    for info in leftovers:
        storage.delete(info.key)
    assert list(storage.list_partials("")) == []
    assert server.client().list_multipart_uploads(Bucket=bucket).get("Uploads") in (None, [])


def test_server_restarted_within_the_retry_budget_completes(
    own_s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    server = own_s3_server
    bucket = bucket_factory(server)
    storage = _storage(server, bucket, retry=RetryPolicy(deadline=120.0))
    body = os.urandom(20 * MIB)
    error = _upload_then_kill(server, storage, body, restart_after=1.0)
    assert error is None
    assert storage.read_bytes("b/dump.zst") == body
    assert list(storage.list_partials("")) == []


def test_failing_writer_aborts_its_upload(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    storage = _storage(s3_server, bucket)
    with pytest.raises(ValueError, match="dump died"), storage.open_atomic_write("x/a") as fh:
        fh.write(os.urandom(12 * MIB))
        raise ValueError("dump died")
    client = s3_server.client()
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads") in (None, [])
