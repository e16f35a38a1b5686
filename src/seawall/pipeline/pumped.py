"""A reader whose source is read ahead in its own thread into a bounded queue.

A producer (pg_basebackup's pipe, the replication stream of a base backup
with tablespaces) must keep streaming while this process compresses and
encrypts: pulled in the pipeline's own thread, every wait on the source
would also be a pause of the compressor. Memory stays bounded by the queue
(``depth`` chunks of ``CHUNK``). The base backup's two producers read ahead
the same way through this one class.
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol

from seawall.pipeline.codecs import PullReader

CHUNK = 1 << 20


class _Source(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class QueuedReader(PullReader):
    """``read`` from a queue a thread fills from ``src``; ``stop`` (optional) ends
    the thread while the queue is full (a caller that must stop it before the
    source goes away, e.g. before a connection libpq shares is closed)."""

    def __init__(
        self,
        src: _Source,
        *,
        name: str,
        depth: int = 8,
        stop: threading.Event | None = None,
    ) -> None:
        self._src = src
        self._stop = stop
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._pending = b""
        self._eof = False
        self._thread = threading.Thread(target=self._pump, name=name, daemon=True)
        self._thread.start()

    def _seen(self, chunk: bytes) -> None:
        """Each chunk as the consumer takes it (a subclass watches the stream here)."""

    def _put(self, item: bytes | BaseException) -> bool:
        if self._stop is None:
            self._queue.put(item)
            return True
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            while True:
                data = self._src.read(CHUNK)
                if not self._put(data) or not data:
                    return
        except BaseException as exc:
            self._put(exc)

    def read(self, n: int = -1) -> bytes:
        if not self._pending:
            if self._eof:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                self._eof = True
                self._thread.join()
                return b""
            self._seen(item)
            self._pending = item
        if n is None or n < 0 or n >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:n], self._pending[n:]
        return data
