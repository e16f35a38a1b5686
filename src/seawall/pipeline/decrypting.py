"""What the streaming decrypting readers share: a file object over decrypted blocks.

Two formats are decrypted in-process as a stream (:mod:`age_scrypt`, age
with a passphrase; :mod:`openssl_legacy`, the old ``openssl enc`` backups),
and both hand out plaintext the same way: the format's ``_fill`` decrypts
(and, for age, authenticates) the next block; :class:`DecryptingReader`
serves ``read``/``readinto`` from it, so a block is never returned before
its ``_fill`` accepted it, and end-of-file is only reported once ``_fill``
said the input ended cleanly. Memory stays bounded by one block.

No ``cryptography`` import here: the formats import their primitives.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: plaintext handed on per read by :func:`decrypt_into` and ``readall``
READ_SIZE = 64 * 1024


class ByteSource(Protocol):
    """Anything with ``read(n) -> bytes``: a file, a pipe, another pipeline stage."""

    def read(self, size: int = ..., /) -> bytes: ...


class ByteSink(Protocol):
    """Anything with ``write(b)``: a file, a hash wrapper, another pipeline stage."""

    def write(self, data: bytes, /) -> object: ...


def read_exact(src: ByteSource, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads (pipes, sockets)."""
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        block = src.read(remaining)
        if not block:
            break
        parts.append(block)
        remaining -= len(block)
    return b"".join(parts)


class DecryptingReader(io.RawIOBase):
    """Read-only file object over the blocks a format's :meth:`_fill` decrypts.

    A subclass reads and checks its header in ``__init__`` (so a wrong key
    or a foreign file fails before any plaintext), then calls
    ``super().__init__()``, and implements :meth:`_fill`: set ``_out`` to
    the next plaintext block and ``_done`` once the input ended cleanly, or
    raise. ``src`` belongs to the caller and stays open.
    """

    def __init__(self) -> None:
        super().__init__()
        self._out = b""
        self._out_pos = 0
        self._done = False

    def _fill(self) -> None:
        """Decrypt the next block into ``_out`` (``_out_pos`` reset by the caller)."""
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        self._checkClosed()
        if size is None or size < 0:
            return self.readall()
        while self._out_pos >= len(self._out):
            if self._done or size == 0:
                return b""
            self._fill()
            self._out_pos = 0
        end = min(len(self._out), self._out_pos + size)
        out = self._out[self._out_pos : end]
        self._out_pos = end
        return out

    def readall(self) -> bytes:
        parts: list[bytes] = []
        while block := self.read(READ_SIZE):
            parts.append(block)
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close this reader; ``src`` belongs to the caller and stays open."""
        self._out = b""
        super().close()


def decrypt_into(reader: DecryptingReader, writer: ByteSink, size: int = READ_SIZE) -> None:
    """Copy all of ``reader``'s plaintext to ``writer``, ``size`` bytes at a time.

    A failure partway (truncation, a flipped byte) raises after earlier
    plaintext was written: ``writer``'s content is untrusted until this returns.
    """
    while True:
        block = reader.read(size)
        if not block:
            break
        writer.write(block)
