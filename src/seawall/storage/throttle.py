"""``MAX_RATE``: a token bucket under every write to a repository.

Why here, as a wrapper around a backend: the operators' rule is "limit
backup I/O during business hours", and what a backup writes is what leaves
the machine (a local volume that is a network mount, or S3). Wrapping the
:class:`~seawall.storage.base.Storage` that the one factory builds means
every writer — a logical dump, a base backup's tar, a Qdrant snapshot, the
manifests — is throttled by one bucket, whichever backend is underneath,
without any engine knowing. Reads (restores, verify) are not throttled: a
restore is the moment nobody wants slowed down.

The bucket holds the *average*: it starts empty and every write first takes
its bytes from the bucket, sleeping for the debt when there are not enough
tokens, so ``n`` bytes take at least ``n / rate`` seconds from the first
write (tests/integration/storage/test_throttle_rate.py: within 5 %). Oversleeping
(a loaded machine) is paid back by the refill, up to ``burst`` — half a
second's worth — so the average neither drifts low nor lets a long pause
turn into a long burst. One bucket may be shared by threads (a lock around
the books; the sleep happens outside it).

This module does not read settings (the factory or the Context passes the
rate): storage stays below configuration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from seawall.storage.base import ObjectInfo, Storage, Usage

#: how much a bucket may hold, in seconds of its rate
BURST_SECONDS = 0.5


class TokenBucket:
    """``consume(n)`` returns once ``n`` bytes fit the rate (bytes per second)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"a token bucket needs a positive rate, not {rate}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(self.rate * BURST_SECONDS, 1.0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = 0.0  # empty at the start: the average counts from the first byte…
        self._last: float | None = None  # …not from when the repository was opened

    def consume(self, n: int) -> float:
        """Take ``n`` tokens, sleeping off any debt; returns the seconds slept."""
        with self._lock:
            now = self._clock()
            last = now if self._last is None else self._last
            self._tokens = min(self.burst, self._tokens + (now - last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class ThrottledWriter:
    """A writer whose ``write`` waits for the bucket first; the rest is the inner writer's."""

    def __init__(self, inner: BinaryIO, bucket: TokenBucket) -> None:
        self._inner = inner
        self._bucket = bucket

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._bucket.consume(len(data))
        return self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        # flush, tell, fileno (the pipeline fdatasyncs local files), closed…
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)


class ThrottledStorage:
    """A :class:`Storage` whose writes share one :class:`TokenBucket`; reads pass through.

    Attributes the protocol does not name (a backend's own capabilities, such
    as the local volume's path) are the inner backend's.
    """

    def __init__(self, inner: Storage, bucket: TokenBucket) -> None:
        self.inner = inner
        self.bucket = bucket

    @contextmanager
    def open_atomic_write(self, key: str) -> Iterator[BinaryIO]:
        with self.inner.open_atomic_write(key) as fh:
            yield cast(BinaryIO, ThrottledWriter(fh, self.bucket))

    def write_bytes(self, key: str, data: bytes) -> None:
        self.bucket.consume(len(data))
        self.inner.write_bytes(key, data)

    def open_read(self, key: str) -> BinaryIO:
        return self.inner.open_read(key)

    def read_bytes(self, key: str) -> bytes:
        return self.inner.read_bytes(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def walk(
        self, prefix: str = "", exclude: tuple[str, ...] = ()
    ) -> Iterator[tuple[ObjectInfo, bool]]:
        return self.inner.walk(prefix, exclude)

    def list_partials(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list_partials(prefix)

    def usage(self) -> Usage | None:
        return self.inner.usage()

    def describe(self) -> str:
        return self.inner.describe()

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, unpickling): no endless recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def throttle(storage: Storage, max_rate: int) -> Storage:
    """``storage`` with writes held to ``max_rate`` bytes per second (0: unchanged)."""
    if not max_rate:
        return storage
    return ThrottledStorage(storage, TokenBucket(max_rate))
