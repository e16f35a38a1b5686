"""The lean wal-push's pass over the segment: hash, compress and encrypt at once.

The segment is read in 256 KiB chunks into a few reused buffers (~2 ms for
16 MiB) instead of one 16 MiB ``read()`` (~7 ms, almost all page faults of
the fresh buffer). Each chunk is hashed in the reading thread while a second
thread compresses the *same* buffer (sha256 and zstd both release the GIL),
so the bytes that are compressed are exactly the bytes that are hashed, even
if the file were to change under us. A third, mostly idle thread encrypts
zstd's output as it comes (``pyrage.encrypt_io``) straight into the
temporary file: no multi-MiB intermediate copies, whose page faults cost
more than the encryption, and the file is written by the time compression
ends. Only ``_thread``, ``_queue`` and ``hashlib`` are imported (and pyrage
when encrypting).
"""

from __future__ import annotations

import os

from seawall.postgres.wal.lean import Fallback

CHUNK = 256 * 1024
_NBUF = 4


class Compressor:
    """Compresses the chunks :func:`hash_and_compress` reads, in a thread.

    A ring of buffers: ``filled[i]`` is released when buffer i holds a chunk,
    ``free[i]`` when the compressor is done with it; a length of 0 ends the
    stream. Compressed pieces go to ``out`` (a queue) as zstd produces them,
    then None; an exception is put in the queue instead of the rest, and the
    loop still drains the ring so the reader never blocks.
    """

    def __init__(self, cctx: object, size: int) -> None:
        import _thread
        from _queue import SimpleQueue

        # SIGINT is held back from here until Sink.join has seen the threads
        # finish: a KeyboardInterrupt raised between taking a ring slot and
        # noting it, or between join's acquire and its note, left the main
        # thread waiting on a lock it held itself and the push hung forever
        # (tests/integration/wal/test_wal_push_exit_threads.py); the noted
        # Ctrl-C is raised by Sink.join
        self.interrupted: list[int] = []
        self._sigint: tuple[object] | None = None
        self._hold_sigint()
        self.cobj = cctx.compressobj(size=size)  # type: ignore[attr-defined]
        self.views = [memoryview(bytearray(CHUNK)) for _ in range(_NBUF)]
        self.lengths = [0] * _NBUF
        self.filled = [_thread.allocate_lock() for _ in range(_NBUF)]
        self.free = [_thread.allocate_lock() for _ in range(_NBUF)]
        for lock in self.filled:
            lock.acquire()
        self.out: SimpleQueue[bytes | BaseException | None] = SimpleQueue()
        self.error: BaseException | None = None
        _thread.start_new_thread(self._run, ())

    def _hold_sigint(self) -> None:
        import _signal  # type: ignore[import-not-found]  # signal.py would import enum

        try:
            previous = _signal.signal(_signal.SIGINT, lambda n, _f: self.interrupted.append(n))
        except ValueError:  # not the main thread: no handler runs in this one anyway
            return
        self._sigint = (_signal.SIG_DFL if previous is None else previous,)

    def restore_sigint(self) -> None:
        """Give SIGINT its handler back (idempotent)."""
        if self._sigint is not None:
            import _signal

            _signal.signal(_signal.SIGINT, self._sigint[0])
            self._sigint = None

    def _compress(self, slot: int, n: int) -> None:
        if self.error is not None:
            return
        try:
            piece = self.cobj.compress(self.views[slot][:n]) if n else self.cobj.flush()
        except BaseException as exc:
            self.error = exc
            return
        if piece:
            self.out.put(piece)

    def _run(self) -> None:
        i = 0
        try:
            while True:
                slot = i % _NBUF
                self.filled[slot].acquire()
                n = self.lengths[slot]
                self._compress(slot, n)
                if n == 0:
                    break
                self.free[slot].release()
                i += 1
        finally:
            if self.error is not None:
                self.out.put(self.error)
            self.out.put(None)


class Sink:
    """Encrypts (or not) the compressed stream into ``fd`` in a thread.

    ``pyrage.encrypt_io`` pulls through :meth:`read` and pushes through
    :meth:`write`, so the age file is written while zstd is still working,
    with no 3 MiB intermediate copies (those cost more in page faults than
    the encryption itself).
    """

    def __init__(self, fd: int, source: Compressor, recipients: list[str]) -> None:
        import _thread

        self.fd = fd
        self.source = source
        self.recipients = recipients
        self.pending = b""
        self.pos = 0
        self.ended = False  # the compressor's end (None) was taken from the queue
        self.error: BaseException | None = None
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.joined = False
        _thread.start_new_thread(self._run, ())

    def read(self, n: int = -1) -> bytes:
        while self.pos >= len(self.pending):
            if self.ended:
                return b""
            item = self.source.out.get()
            if item is None:
                self.ended = True
                return b""
            if isinstance(item, BaseException):
                raise item
            self.pending, self.pos = item, 0
        if self.pos == 0 and (n < 0 or n >= len(self.pending)):
            self.pos = len(self.pending)
            return self.pending
        end = len(self.pending) if n < 0 else self.pos + n
        piece = self.pending[self.pos : end]
        self.pos += len(piece)
        return piece

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        return len(data)

    def _run(self) -> None:
        try:
            if self.recipients:
                import pyrage
                from pyrage import x25519

                pyrage.encrypt_io(
                    self, self, [x25519.Recipient.from_str(r) for r in self.recipients]
                )
            else:
                while piece := self.read():
                    self.write(piece)
        except BaseException as exc:
            self.error = exc
        finally:
            while not self.ended:  # let the compressor finish
                self.ended = self.source.out.get() is None
            self.done.release()

    def join(self) -> None:
        """Wait for the thread; then a Ctrl-C held back meanwhile is raised (see Compressor)."""
        if not self.joined:
            self.done.acquire()
            self.joined = True
            self.source.restore_sigint()
            if self.source.interrupted:
                raise KeyboardInterrupt

    def wait(self) -> None:
        """Until the whole stream is written; re-raises what went wrong."""
        self.join()
        if self.source.error is not None:
            raise Fallback(f"compression failed: {self.source.error}")
        if self.error is not None:
            raise self.error


def hash_and_compress(fd: int, size: int, comp: Compressor) -> str:
    """sha256 (hex) of the file, feeding the compressor the same bytes."""
    import hashlib

    digest = hashlib.sha256()
    offset = 0
    i = 0
    held: int | None = None  # a slot taken from the compressor but not handed back
    try:
        while offset < size:
            slot = i % _NBUF
            comp.free[slot].acquire()
            held = slot
            view = comp.views[slot][: min(CHUNK, size - offset)]
            n = os.preadv(fd, [view], offset)
            if n <= 0:
                break
            comp.lengths[slot] = n
            comp.filled[slot].release()
            held = None  # after the release: an interrupt in between must not re-take the slot
            digest.update(view[:n])
            offset += n
            i += 1
    finally:
        if offset < size:  # shrank, or the read failed: no archive from this
            comp.error = comp.error or Fallback("the segment shrank or could not be read")
        if held is None:
            held = i % _NBUF
            comp.free[held].acquire()
        comp.lengths[held] = 0  # end of stream
        comp.filled[held].release()
    if offset < size:
        raise Fallback("the segment shrank while it was read")
    return digest.hexdigest()
