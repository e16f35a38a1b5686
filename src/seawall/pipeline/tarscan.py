"""A streaming tar checker that also picks small members out of the stream.

The base backup flows through the pipeline once; on the way this scanner
checks every tar header (checksum, size field) and keeps ``backup_label`` and
``backup_manifest``, which give the backup's start LSN, timeline and WAL
range without a second pass or a server round trip. The same scanner checks
the structure of a stored backup at verify time, and the outer structure of
Qdrant snapshots while they stream (it lives in the pipeline layer so both
engines can use it; what it saw is recorded as ``Artifact.stream_check`` for
verification without the decryption identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from seawall.pipeline.pumped import CHUNK, QueuedReader

BLOCK = 512
WANTED = ("backup_label", "backup_manifest", "PG_VERSION")
_MAX_CAPTURE = 256 * 1024 * 1024


class TarStructureError(ValueError):
    """The stream is not a well-formed tar archive."""


def _octal_or_base256(field_bytes: bytes) -> int:
    if field_bytes and field_bytes[0] & 0x80:
        value = field_bytes[0] & 0x7F
        for b in field_bytes[1:]:
            value = (value << 8) | b
        return value
    text = field_bytes.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


@dataclass
class TarScanner:
    """Push bytes with :meth:`feed`; call :meth:`finish` at the end."""

    wanted: tuple[str, ...] = WANTED
    members: int = 0
    captured: dict[str, bytes] = field(default_factory=dict)
    ended: bool = False
    _buf: bytearray = field(default_factory=bytearray)
    _remaining: int = 0  # data bytes (incl. padding) still to skip
    _capture_name: str | None = None
    _capture_size: int = 0
    _capture: bytearray = field(default_factory=bytearray)
    _zero_blocks: int = 0

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while len(view):
            if self._remaining:
                take = min(self._remaining, len(view))
                if self._capture_name is not None:
                    need = self._capture_size - len(self._capture)
                    if need > 0:
                        self._capture += view[: min(need, take)]
                self._remaining -= take
                view = view[take:]
                if not self._remaining and self._capture_name is not None:
                    self.captured[self._capture_name] = bytes(self._capture)
                    self._capture_name = None
                    self._capture = bytearray()
                continue
            need = BLOCK - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) == BLOCK:
                header = bytes(self._buf)
                self._buf.clear()
                self._header(header)

    def _header(self, header: bytes) -> None:
        if self.ended:
            if header.strip(b"\0"):
                raise TarStructureError("data after the end-of-archive marker")
            return
        if not header.strip(b"\0"):
            self._zero_blocks += 1
            if self._zero_blocks >= 2:
                self.ended = True
            return
        if self._zero_blocks:
            raise TarStructureError("a zero block in the middle of the archive")
        stored = _octal_or_base256(header[148:156])
        actual = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if stored != actual:
            raise TarStructureError(f"bad header checksum after {self.members} members")
        name = header[:100].split(b"\0", 1)[0].decode(errors="replace")
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0].decode(errors="replace")
            if prefix:
                name = f"{prefix}/{name}"
        size = _octal_or_base256(header[124:136])
        typeflag = header[156:157]
        if typeflag in (b"1", b"2", b"3", b"4", b"5", b"6"):
            size = 0
        self.members += 1
        self._remaining = (size + BLOCK - 1) // BLOCK * BLOCK
        name = name.removeprefix("./")
        if name in self.wanted and size <= _MAX_CAPTURE and typeflag in (b"0", b"\0"):
            if size == 0:
                self.captured[name] = b""
            else:
                self._capture_name = name
                self._capture_size = size

    def finish(self) -> None:
        """Raise unless the archive ended properly."""
        if self._remaining or self._buf:
            raise TarStructureError("the archive is truncated (a member is incomplete)")
        if not self.ended:
            raise TarStructureError("the archive has no end-of-archive marker (truncated)")


class ScanningReader(QueuedReader):
    """Wraps a producer's stdout: the pipeline pulls, the scanner watches.

    A reader thread keeps pulling from the pipe into a bounded queue (at most
    ``depth`` chunks of 1 MiB), so pg_basebackup keeps streaming while this
    process compresses and encrypts: without it the producer stalls on a
    full 64 KiB pipe each time the pipeline works on a chunk. Memory stays
    bounded by the queue.
    """

    def __init__(self, src: BinaryIO, scanner: TarScanner, depth: int = 8) -> None:
        self.scanner = scanner
        _grow_pipe(src)
        super().__init__(src, name="tar-reader", depth=depth)

    def _seen(self, chunk: bytes) -> None:
        self.scanner.feed(chunk)


def _grow_pipe(src: BinaryIO) -> None:
    """Ask for a 1 MiB pipe buffer (Linux); harmless where unsupported."""
    try:
        import fcntl

        fcntl.fcntl(src.fileno(), 1031, CHUNK)  # F_SETPIPE_SZ
    except (OSError, ValueError, AttributeError, ImportError):
        pass


def parse_backup_label(text: str) -> dict[str, str]:
    """``backup_label`` lines as a dict (``START WAL LOCATION`` -> ``0/2000028 (file …)``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out
