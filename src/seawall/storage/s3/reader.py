"""Streaming reads from S3 that survive a connection reset.

A restore reads gigabytes over one HTTP response; a reset half-way must
not restart from byte 0 nor fail the restore. The reader remembers how far
it got and the object's ETag, and resumes with ``Range: bytes=<pos>-`` and
``If-Match: <etag>`` — so a resumed read can never splice two versions of
an object together (a replaced object answers 412 and the read fails).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)

from seawall.errors import StorageError
from seawall.storage.s3.retry import RetryPolicy

Opener = Callable[[int, str | None], dict[str, Any]]

#: a reset mid-body shows up as any of these; IncompleteReadError is botocore's
#: "the connection ended before Content-Length" (a response cut by a proxy)
_RESUMABLE = (
    BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
    OSError,
)


class ResumingReader(io.RawIOBase):
    """``read(n)`` over a GetObject body, re-opened at the current offset on a reset."""

    def __init__(self, open_at: Opener, key: str, policy: RetryPolicy) -> None:
        super().__init__()
        self._open_at = open_at
        self._key = key
        self._policy = policy
        resp = open_at(0, None)
        self._etag: str | None = resp.get("ETag")
        self._size = int(resp.get("ContentLength", 0))
        self._body: Any = resp["Body"]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                data: bytes = self._body.read(None if size is None or size < 0 else size)
            except _RESUMABLE as exc:
                pause = self._policy.delay(attempt)
                if time.monotonic() - start + pause > self._policy.deadline:
                    raise StorageError(
                        f"reading {self._key} from S3 failed at byte {self._pos} of "
                        f"{self._size} ({type(exc).__name__}): check the server is up"
                    ) from exc
                time.sleep(pause)
                attempt += 1
                self._reopen()
                continue
            self._pos += len(data)
            return data

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):  # the broken connection may fail to close too
            self._body.close()
        self._body = self._open_at(self._pos, self._etag)["Body"]

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._body.close()
            finally:
                super().close()
