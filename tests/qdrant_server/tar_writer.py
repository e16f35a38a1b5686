"""A minimal tar writer for snapshot archives: headers by ``tarfile``, data by
the kernel.

Why not ``tarfile`` for writing: its stream mode copies every byte through
Python buffers, and a nested tar (one per segment) must then be staged on disk
first to learn its size. Tar sizes are computable (512-byte header + data
padded to 512 per member), so this writer emits the nested segment tar inline
inside the outer one and copies file data with ``os.sendfile`` file-to-file.
The sha256 is computed afterwards by reading the finished file, as Qdrant does
(``hash_file``). The output is an ordinary GNU tar that ``tarfile``, GNU tar
and Qdrant read.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import time
from pathlib import Path
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE
COPY_CHUNK = 4 * 1024 * 1024


def _header(name: str, size: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.mode = 0o755 if directory else 0o644
    info.mtime = int(time.time())
    if directory:
        info.type = tarfile.DIRTYPE
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return tarfile.NUL * (-size % BLOCK)


def _segment_members(segment_dir: Path) -> list[tuple[str, Path, int]]:
    members = []
    for root, dirs, files in os.walk(segment_dir):
        dirs.sort()
        for fname in sorted(files):
            full = Path(root) / fname
            rel = full.relative_to(segment_dir).as_posix()
            members.append((f"snapshot/files/{rel}", full, full.stat().st_size))
    return members


class TarWriter:
    """Appends members to an open binary file; ``close()`` writes the end marker."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def add_bytes(self, name: str, data: bytes) -> None:
        self._out.write(_header(name, len(data)) + data + _padding(len(data)))

    def add_dir(self, name: str) -> None:
        self._out.write(_header(name.rstrip("/"), 0, directory=True))

    def add_file(self, name: str, path: Path, size: int | None = None) -> None:
        size = path.stat().st_size if size is None else size
        self._out.write(_header(name, size))
        self._copy(path, size)
        self._out.write(_padding(size))

    def add_segment_tar(self, name: str, segment_dir: Path) -> None:
        """Write ``segment_dir`` as a nested tar member (``snapshot/files/...``),
        the layout of Qdrant's ``Segment::take_snapshot``. Files must not change
        meanwhile (the caller holds the shard lock)."""
        members = _segment_members(segment_dir)
        headers = [_header(n, s) for n, _p, s in members]
        nested_size = sum(
            len(h) + s + (-s % BLOCK) for h, (_n, _p, s) in zip(headers, members, strict=True)
        )
        nested_size += 2 * BLOCK
        self._out.write(_header(name, nested_size))
        for header, (_n, path, size) in zip(headers, members, strict=True):
            self._out.write(header)
            self._copy(path, size)
            self._out.write(_padding(size))
        self._out.write(tarfile.NUL * (2 * BLOCK))
        # nested_size is a multiple of 512: no outer padding needed

    def close(self) -> None:
        self._out.write(tarfile.NUL * (2 * BLOCK))
        self._out.flush()

    def _copy(self, path: Path, size: int) -> None:
        self._out.flush()
        out_fd = self._out.fileno()
        with path.open("rb") as src:
            offset = 0
            while offset < size:
                sent = os.sendfile(out_fd, src.fileno(), offset, min(COPY_CHUNK, size - offset))
                if sent == 0:
                    raise OSError(f"{path} shrank while being archived")
                offset += sent


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
