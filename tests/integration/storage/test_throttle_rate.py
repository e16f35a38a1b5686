"""MAX_RATE for real: bytes written through a throttled backend (a local
directory and S3 on SeaweedFS) at a low rate, timed with the wall clock.

The bucket's promise is the average: from the first write to the last, the
bytes divided by the elapsed time are the rate within 5 %. Writes come in
uneven chunks (as a dump's do), and one chunk is bigger than the bucket.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.storage.base import Storage
from seawall.storage.local import LocalStorage
from seawall.storage.s3 import S3Storage
from seawall.storage.throttle import throttle
from tests.support.s3server import S3Server

KIB = 1024
MIB = 1024 * KIB
RATE = 2 * MIB  # bytes per second
TOTAL = 8 * MIB  # ~4 s: 5 % is 200 ms of slack for a loaded machine


def _chunks() -> list[bytes]:
    sizes = [64 * KIB, 200 * KIB, 3 * KIB, 1 * MIB, 2 * MIB + 17, 512 * KIB]
    out: list[bytes] = []
    left = TOTAL
    i = 0
    while left > 0:
        n = min(sizes[i % len(sizes)], left)
        out.append(os.urandom(n))
        left -= n
        i += 1
    return out


def _write_timed(storage: Storage, key: str) -> tuple[float, float]:
    """(seconds from the first write to the last, seconds until committed)."""
    chunks = _chunks()
    start = time.monotonic()
    with storage.open_atomic_write(key) as fh:
        for chunk in chunks:
            fh.write(chunk)
        written = time.monotonic() - start
    return written, time.monotonic() - start


def _check(storage: Storage, inner: Storage, key: str) -> None:
    written, committed = _write_timed(storage, key)
    rate = TOTAL / written
    assert rate == pytest.approx(RATE, rel=0.05), f"{rate / MIB:.3f} MiB/s in {written:.2f}s"
    assert TOTAL / committed <= RATE * 1.05  # committing never makes it faster
    assert inner.stat(key).size == TOTAL


def test_local_volume_writes_hold_the_rate(tmp_path: Path) -> None:
    inner = LocalStorage(tmp_path)
    _check(throttle(inner, RATE), inner, "postgresql/logical/db/dump.zst")


def test_s3_uploads_hold_the_rate(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    inner = S3Storage(
        f"s3://{bucket_factory(s3_server)}/r",
        endpoint_url=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        part_size=5 * MIB,
    )
    _check(throttle(inner, RATE), inner, "qdrant/c/snap.zst")


def test_unthrottled_is_faster_than_the_rate(tmp_path: Path) -> None:
    """The check above can fail: without the bucket the same writes beat the rate."""
    inner = LocalStorage(tmp_path)
    written, _ = _write_timed(throttle(inner, 0), "k")
    assert TOTAL / written > RATE * 1.05
