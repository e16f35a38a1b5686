"""The storage protocol every backend implements.

Why a protocol and not a path: the local volume is the first backend, S3 is
next. Everything above storage (pipeline, catalog, engines) speaks keys and
streams, so a new backend is one class plus the shared contract tests.

The one promise that matters: :meth:`Storage.open_atomic_write` makes an
object appear under its key only when it is complete and durable. Until
``commit`` the bytes sit under a temporary name that listing never returns;
a crash leaves at most such a temporary, which ``prune`` removes.
"""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from seawall.errors import StorageError

# PARTIAL_MARKER: the marker in temporary names; listing skips them, prune
# removes stale ones. Declared in walcore because the lean wal-push writes
# such temporaries itself, without importing this layer.
from seawall.walcore.layout import PARTIAL_MARKER as PARTIAL_MARKER

#: A temporary is ``<final name>.partial-<8 hex>`` exactly: WAL's own ``.partial``
#: segments (archived at promotion, ``…0007.partial-<sha>.zst``) must not match.
_PARTIAL_RE = re.compile(r"\.partial-[0-9a-f]{8}$")


def is_partial_name(name: str) -> bool:
    """Whether a file name is an in-progress temporary of an atomic write."""
    return bool(_PARTIAL_RE.search(name))


def check_key(key: str) -> str:
    """Refuse keys that could escape the storage root (``..``, absolute, NUL)."""
    if not key or "\x00" in key or key.startswith("/") or "\\" in key:
        raise StorageError(f"refusing unsafe storage key {key!r}")
    parts = key.split("/")
    if any(p in ("..", ".", "") for p in parts):
        raise StorageError(f"refusing unsafe storage key {key!r}")
    return key


def storage_error(exc: OSError, what: str) -> StorageError:
    """Turn an OSError into a one-line StorageError with the likely fix."""
    if exc.errno == errno.ENOSPC:
        return StorageError(
            f"backup volume full while writing {what}: free space or grow the volume"
        )
    if exc.errno == errno.ENOTDIR:
        return StorageError(
            f"cannot write {what}: {exc.filename or 'a path component'} is not a directory; "
            "BACKUP_DIR must be a directory"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageError(
            f"cannot write {what}: {exc.strerror}; check the volume is mounted read-write "
            "and owned by the user seawall runs as"
        )
    return StorageError(f"storage error on {what}: {exc.strerror or exc}")


@runtime_checkable
class LocalVolume(Protocol):
    """The explicit local capability: a repository that is a directory on a mounted filesystem.

    Why a named capability: a few things are local by design — flock series
    locks, inotify watching, ``statvfs`` usage, the lean wal-push/wal-fetch
    that write files with ``os`` calls only. They ask ``storage.local_volume()``
    and say what they do without it (ADR 0012); everything else speaks keys
    and streams, so an object store is one more backend, not a rewrite.
    """

    root: Path

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (which need not exist yet)."""
        ...


@runtime_checkable
class Leasing(Protocol):
    """The capability of a backend without a shared filesystem to lock: leases on a key.

    Why: flock needs a filesystem every run shares; a bucket has none. A
    backend that offers :meth:`lease` (S3: a conditional create renewed by
    its holder, docs/adr/0011-s3-client.md) gives :mod:`seawall.catalog.locks`
    what flock gives on a :class:`LocalVolume` (ADR 0012).
    """

    def lease(
        self, key: str, *, timeout: float, command: str, lease_seconds: float = 300.0
    ) -> AbstractContextManager[None]:
        """Hold the exclusive lease on ``key``; wait up to ``timeout`` s, then LockedError."""
        ...


@runtime_checkable
class ServerClock(Protocol):
    """A backend whose object times are stamped by a server with its own clock.

    Why: a lease (ADR 0012) or a marker (a mirror's ``down``) expires when
    its object's ``mtime`` plus a duration has passed. S3 stamps
    ``LastModified`` with the *server's* clock, so "now" must be the
    server's too: with the local clock, a host running 8 minutes fast sees
    every live lock and hold as expired (and prune deletes a backup being
    restored), one running slow sees dead ones as held.
    """

    def server_time(self) -> float:
        """Now (epoch seconds) by the clock that stamps this backend's ``mtime``."""
        ...


def repository_time(storage: object) -> float:
    """Now by the repository's clock: the server's for S3, this host's for a volume."""
    if isinstance(storage, ServerClock):
        return storage.server_time()
    return time.time()


@dataclass(frozen=True)
class ObjectInfo:
    """Size and modification time of a stored object."""

    key: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Usage:
    """Capacity of the volume holding the backups."""

    total: int
    used: int
    free: int


@runtime_checkable
class Storage(Protocol):
    """A place to keep artifacts and manifests under string keys."""

    def open_atomic_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Write an object that appears under ``key`` only once complete and durable.

        On a clean exit of the context the data is fsynced and renamed into
        place (and the directory fsynced). On an exception the temporary is
        removed and nothing appears.
        """
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Atomically write a small object (manifests)."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """Open an object for streaming reads; NotFoundError when missing."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """Read a small object whole."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a complete object exists under ``key``."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size and mtime; NotFoundError when missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object; missing is not an error (deletion is idempotent)."""
        ...

    def delete_tree(self, prefix: str) -> None:
        """Remove every object under ``prefix`` (and, on disk, the emptied directories)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Complete objects under ``prefix`` (recursive), skipping temporaries."""
        ...

    def walk(
        self, prefix: str = "", exclude: tuple[str, ...] = ()
    ) -> Iterator[tuple[ObjectInfo, bool]]:
        """Every object under ``prefix``, temporaries included (flag True), in one pass,
        skipping the sub-trees whose keys are in ``exclude``."""
        ...

    def list_partials(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Temporaries left by crashed writers, for ``prune`` to clean."""
        ...

    def usage(self) -> Usage | None:
        """Volume capacity where the backend knows it (None for object stores)."""
        ...

    def describe(self) -> str:
        """Human description for messages (a path or a URL, never a secret)."""
        ...

    def local_volume(self) -> LocalVolume | None:
        """The directory behind this repository, when it is one (None for object stores)."""
        ...
