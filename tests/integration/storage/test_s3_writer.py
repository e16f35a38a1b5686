"""The multipart writer on SeaweedFS: bytes land exactly, whatever the chunking,
and its part buffers are bounded and reused (issue 14: peak RSS of a 2 GiB
upload under 200 MB).

Each part's body goes out as the buffer itself (no ``BytesIO`` copy, no
``Expect: 100-continue`` round trip). The caller's chunks straddle part boundaries, come as ``bytes``,
``bytearray`` and ``memoryview``, and the caller overwrites its buffer right
after each write (the pipeline's readers reuse theirs): the object read back
must be byte-identical, its composite checksum must name every part, and
the writer must never have held more than ``max_in_flight + 1`` part
buffers, reused rather than allocated per part.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from seawall.storage.s3 import RetryPolicy, S3Storage, writer as writer_mod
from tests.support.s3server import S3Server

MIB = 1024 * 1024


def _storage(server: S3Server, bucket: str, max_in_flight: int) -> S3Storage:
    return S3Storage(
        f"s3://{bucket}/repo",
        endpoint_url=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        part_size=5 * MIB,
        max_in_flight=max_in_flight,
        retry=RetryPolicy(deadline=30.0),
    )


def test_odd_chunks_reused_buffers_land_exactly(
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = bucket_factory(s3_server)
    storage = _storage(s3_server, bucket, max_in_flight=2)
    allocations: list[int] = []
    real_bytearray = bytearray

    def counting_bytearray(*args: object) -> bytearray:
        if len(args) == 1 and isinstance(args[0], int):
            allocations.append(args[0])  # a part buffer (the writer's only use of the form)
        return real_bytearray(*args)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(writer_mod, "bytearray", counting_bytearray, raising=False)
    sent: list[tuple[str | None, str]] = []

    def on_send(request: Any, **_: object) -> None:
        sent.append((request.headers.get("Expect"), type(request.body).__name__))

    storage.data_client.meta.events.register("before-send.s3.UploadPart", on_send)
    body = os.urandom(41 * MIB + 12345)  # 9 parts of 5 MiB, the last one short
    reused = bytearray(3 * MIB + 7)
    with storage.open_atomic_write("b/odd") as fh:
        pos, turn = 0, 0
        while pos < len(body):
            size = (3 * MIB + 7, 1, 777_777, 2 * MIB)[turn % 4]
            piece = body[pos : pos + size]
            if turn % 3 == 0:
                fh.write(piece)
            elif turn % 3 == 1:
                reused[: len(piece)] = piece
                fh.write(memoryview(reused)[: len(piece)])
                reused[: len(piece)] = b"\xee" * len(piece)  # the caller reuses its buffer
            else:
                fh.write(bytearray(piece))
            pos += len(piece)
            turn += 1
    got = storage.read_bytes("b/odd")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    head = s3_server.client().head_object(Bucket=bucket, Key="repo/b/odd", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32", "").endswith("-9")  # every part carried its CRC32
    # 9 parts went through at most max_in_flight + 1 = 3 buffers of the part size
    assert allocations and len(allocations) <= 3, allocations
    assert set(allocations) == {5 * MIB}
    # each part body went out as the buffer itself: no BytesIO wrapper read in
    # 128 KiB blocks (a copy), no Expect: 100-continue round trip per part
    assert len(sent) == 9
    assert all(expect is None and kind == "bytearray" for expect, kind in sent), sent


def test_a_small_object_allocates_no_part_buffer(
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A manifest or a WAL segment is one PutObject straight from the caller's bytes."""
    bucket = bucket_factory(s3_server)
    storage = _storage(s3_server, bucket, max_in_flight=4)
    allocations: list[object] = []
    real_bytearray = bytearray
    monkeypatch.setattr(
        writer_mod,
        "bytearray",
        lambda *a: allocations.append(a) or real_bytearray(*a),  # type: ignore[call-overload]
        raising=False,
    )
    data = os.urandom(5 * MIB - 1)
    with storage.open_atomic_write("small") as fh:
        fh.write(data[:100])
        fh.write(data[100:])
    assert storage.read_bytes("small") == data
    assert allocations == []


def test_max_in_flight_parts_are_sent_at_once(
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    """``max_in_flight`` is what the server sees: that many parts sent at once.

    The knob ADR 0011 addendum 4 measured (4 by default, 6, 8 of 5 MiB in the
    bench) must not be capped below its value by the part pool or by
    botocore's connection pool. Each part's send is held until 6 are being
    sent together: with fewer open, the writer waits for a part to finish,
    none does, and the barrier breaks. Then the bytes must land intact.
    """
    bucket = bucket_factory(s3_server)
    storage = _storage(s3_server, bucket, max_in_flight=6)
    part = storage.part_size
    together = threading.Barrier(6, timeout=120)  # generous: the machine is shared
    sending: list[int] = []
    lock = threading.Lock()

    def on_send(request: Any, **_: object) -> None:
        with lock:
            sending.append(len(request.body))
            first_six = len(sending) <= 6
        if first_six:
            together.wait()  # BrokenBarrierError fails the part, then the write

    storage.data_client.meta.events.register("before-send.s3.UploadPart", on_send)
    body = os.urandom(7 * part + 123)
    with storage.open_atomic_write("b/six") as fh:
        for pos in range(0, len(body), MIB):
            fh.write(body[pos : pos + MIB])
    assert not together.broken
    # 7 full parts and the short one (a part retried under load would be sent twice)
    assert sending.count(part) >= 7 and 123 in sending, sorted(sending)
    assert hashlib.sha256(storage.read_bytes("b/six")).digest() == hashlib.sha256(body).digest()
