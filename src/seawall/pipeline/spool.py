"""Read a stored object once, hashing it into a private spool, before decoding.

Why a spool: invariant 4 says no byte of an artifact reaches a consumer
(pg_restore, psql, a Qdrant upload, a file) before its sha256 matches the
manifest. Hashing in a separate pass and then reading again to decode
costs a second download from object storage (a 2 GiB restore from S3 took
30.7 s instead of 19.0 s) and leaves a window in which the object read the
second time is not the one that was hashed. Copying the stored bytes into
a private, unlinked temporary while hashing them reads the object exactly
once, and the bytes decoded are the bytes that were hashed: nobody else
can write to the spool.

Where it lives: objects up to :data:`MEMORY_SPOOL` bytes stay in memory;
larger ones go to an anonymous file (``O_TMPFILE`` where the kernel has
it: no name, gone when closed or when the process dies) in the directory
``TMPDIR`` names (``/tmp`` by default). Its free space is checked against
the object's size before the first byte is read, and a disk that fills
anyway (another process writing there) is one line, exit 7, naming the
directory and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from seawall.errors import StorageError
from seawall.pipeline.codecs import CHUNK
from seawall.storage.base import Storage

#: objects up to this size are spooled in memory (globals.sql, small WAL files)
MEMORY_SPOOL = 4 << 20

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclass
class Spooled:
    """The stored bytes of one object, read once: rewound, with their sha256."""

    file: BinaryIO
    sha256: str
    size: int


def spool_dir() -> str:
    """Where large spools go: ``TMPDIR`` (read at each restore), else ``/tmp``."""
    return os.environ.get("TMPDIR") or tempfile.gettempdir()


def _full_error(key: str, size: int, where: str, free: int | None) -> StorageError:
    have = f", {free} free" if free is not None else ""
    return StorageError(
        f"no room to spool {key} ({size} bytes) in {where}{have}: restore reads each "
        "object once into scratch space to check its sha256 before decoding; free space "
        "there or set TMPDIR to a directory with room"
    )


def check_room(key: str, size: int, where: str) -> None:
    """StorageError (exit 7) unless ``where`` has ``size`` bytes free for an unprivileged user."""
    try:
        st = os.statvfs(where)
    except OSError as exc:
        raise StorageError(
            f"cannot use {where} as scratch space for {key} ({exc.strerror}); set TMPDIR "
            "to a writable directory"
        ) from exc
    free = st.f_bavail * st.f_frsize
    if free < size:
        raise _full_error(key, size, where, free)


def _open_file(key: str, where: str) -> BinaryIO:
    try:
        # TemporaryFile: O_TMPFILE (or created and unlinked at once), mode 0600
        # unbuffered: a full disk surfaces at write(), where it is caught
        return tempfile.TemporaryFile(dir=where, buffering=0)
    except OSError as exc:
        raise StorageError(
            f"cannot create scratch space for {key} in {where} ({exc.strerror}); set TMPDIR "
            "to a writable directory"
        ) from exc


def _write_all(out: BinaryIO, data: bytes) -> None:
    """Write all of ``data`` (an unbuffered file may take less than asked)."""
    view = memoryview(data)
    while view:
        view = view[out.write(view) :]


def spool(storage: Storage, key: str, size: int) -> Spooled:
    """Copy ``key`` (``size`` bytes expected) into a private spool, hashing on the way.

    The caller closes ``Spooled.file``. A full disk is a StorageError naming
    the spool's directory; a read error of the repository propagates as the
    backend raised it.
    """
    where = spool_dir()
    if size > MEMORY_SPOOL:
        check_room(key, size, where)
        out: BinaryIO = _open_file(key, where)
    else:
        out = io.BytesIO()
    h = hashlib.sha256()
    count = 0
    try:
        with storage.open_read(key) as src:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                count += len(chunk)
                try:
                    _write_all(out, chunk)
                except OSError as exc:
                    if exc.errno in _FULL:
                        raise _full_error(key, size, where, None) from exc
                    raise StorageError(
                        f"cannot write scratch space for {key} in {where} ({exc.strerror})"
                    ) from exc
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return Spooled(out, h.hexdigest(), count)
