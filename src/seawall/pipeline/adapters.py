"""The I/O adapters the pipeline is built from: counting, hashing, threads.

Each wraps a reader or a writer and adds one thing: a count and a sha256
(:class:`CountingReader` for raw bytes pulled from a producer or stored
bytes pulled by a decryptor, :class:`HashingWriter` for stored bytes going
to storage, :class:`CountingSink` for decoded bytes going to a consumer), or
a thread that overlaps the stages (:class:`PrefetchReader` runs compression
ahead of encryption, :class:`BackgroundWriter` hashes and writes behind it),
so a backup uses both cores the way ``zstd | age`` does as two processes.
Memory stays bounded by their queues (a few 1 MiB blocks).

No pydantic, no settings (``wal-push`` imports this; it must start fast).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from typing import BinaryIO

from seawall.pipeline.codecs import CHUNK, PullReader, Sink

Progress = Callable[[int], None]


class CountingReader(PullReader):
    """Counts and (optionally) hashes bytes as a downstream stage pulls them.

    Used on both sides: raw bytes pulled from the producer (write side) and
    stored bytes pulled by the decryptor (read side, with the already-read
    ``prefix`` that format sniffing consumed).
    """

    def __init__(
        self,
        src: BinaryIO | PullReader,
        progress: Progress | None = None,
        hashing: bool = True,
        prefix: bytes = b"",
        tap: Callable[[bytes], None] | None = None,
    ) -> None:
        self._src = src
        self._prefix = prefix
        self.count = 0
        self.hash = hashlib.sha256() if hashing else None
        self._progress = progress
        self._tap = tap

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            take = len(self._prefix) if n is None or n < 0 else n
            data, self._prefix = self._prefix[:take], self._prefix[take:]
        else:
            data = self._src.read(n if n and n > 0 else CHUNK)
        if data:
            self.count += len(data)
            if self.hash is not None:
                self.hash.update(data)
            if self._tap is not None:
                self._tap(data)
            if self._progress is not None:
                self._progress(len(data))
        return data

    def hexdigest(self) -> str:
        assert self.hash is not None, "hashing is off for this reader"
        return self.hash.hexdigest()


class HashingWriter:
    """Hashes and counts stored bytes; remembers an OSError (ENOSPC) for a clear report."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self.count = 0
        self.hash = hashlib.sha256()
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            self._dst.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.hash.update(data)
        self.count += len(data)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._dst.flush()

    def sync(self) -> None:
        """fdatasync what was written so far (a no-op for non-file sinks)."""
        self._dst.flush()
        try:
            fd = self._dst.fileno()
        except (AttributeError, OSError, ValueError):
            return
        os.fdatasync(fd)


#: Background writer: fdatasync every this many bytes to overlap writeback.
SYNC_EVERY = 64 << 20


class BackgroundWriter:
    """Hash and write stored bytes in a thread while the encryptor keeps going.

    age hands over 64 KiB pieces; they are gathered into 1 MiB blocks and a
    bounded queue (``depth`` blocks) feeds a thread that hashes (GIL released)
    and writes them, so encryption, hashing and I/O overlap.
    """

    def __init__(self, inner: HashingWriter, depth: int = 4) -> None:
        import queue
        import threading

        self._inner = inner
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seawall-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        unsynced = 0
        while True:
            block = self._q.get()
            if block is None:
                return
            if self._error is None:
                try:
                    self._inner.write(block)
                    unsynced += len(block)
                    if unsynced >= SYNC_EVERY:
                        # Start writeback while encryption continues, so the final
                        # fsync (durability before the rename) has little left to do.
                        self._inner.sync()
                        unsynced = 0
                except BaseException as exc:  # reported to the producer thread
                    self._error = exc

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= CHUNK:
            self._q.put(b"".join(self._pending))
            self._pending, self._pending_size = [], 0
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        """Drain everything to the file; re-raise a write error (ENOSPC)."""
        if self._pending:
            self._q.put(b"".join(self._pending))
            self._pending, self._pending_size = [], 0
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class CountingSink:
    def __init__(self, sink: Sink, progress: Progress | None = None) -> None:
        self._sink = sink
        self.count = 0
        self._progress = progress

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self.count += len(data)
        if self._progress is not None:
            self._progress(len(data))
        return len(data)


class PrefetchReader(PullReader):
    """Run the upstream stages (producer read, raw hash, compression) in a thread.

    The encryptor pulls from this reader while a background thread keeps a
    bounded queue (``depth`` chunks of 1 MiB) filled. zstd, sha256 and the
    pipe reads release the GIL, so compression and encryption use both cores
    the way ``zstd | age`` does as two processes. Memory stays bounded by
    the queue depth.
    """

    def __init__(self, src: BinaryIO, depth: int = 4) -> None:
        import queue
        import threading

        self._src = src
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._buf = b""
        self._pos = 0
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seawall-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._src.read(CHUNK)
                if not chunk:
                    break
                self._q.put(chunk)
            self._q.put(None)
        except BaseException as exc:  # handed to the consumer thread
            self._q.put(exc)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        while self._pos >= len(self._buf) and not self._done:
            item = self._q.get()
            if item is None:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                raise item
            else:
                self._buf, self._pos = item, 0
        if self._pos == 0 and n >= len(self._buf):
            data, self._buf = self._buf, b""
            return data
        # Slice by offset: re-slicing the remainder would copy the whole chunk
        # at every small read (age pulls 64 KiB at a time).
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def close(self) -> None:
        """Stop the thread (on an error downstream) without blocking forever."""
        import queue

        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._q.get(timeout=0.1)
        self._thread.join()


def copy_stream(src: BinaryIO | CountingReader | PrefetchReader, dst: Sink) -> None:
    """Copy ``src`` to ``dst`` in 1 MiB chunks (no encryption: nothing else to do)."""
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return
        dst.write(chunk)
