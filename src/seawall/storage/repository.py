"""The repository (``BACKUP_DIR``) must exist: readers refuse, writers create one level at most.

Why: a volume that is not mounted looks exactly like an empty directory
tree that does not exist yet. Before this rule ``postgres list`` answered
"no logical backups" with exit 0 (the operator concludes the backups are
gone, or that all is well), and ``backup`` created the whole path on the
root filesystem and filled it. So:

* reading commands (list, verify, restore, prune, wal-check, pitr-restore,
  the exporter) call :func:`require_repository`: a missing repository is
  :class:`RepositoryMissingError` (exit 7, the volume is unreachable);
* writing commands (the backups, the general ``wal-push`` path) call
  :func:`ensure_repository`: the repository's own top directory is created
  (0700) when its parent exists (a fresh volume mounted at ``/backups``
  whose repository is ``/backups/seawall``), never a whole path;
* ``seawall init`` (:func:`init_repository`) creates a new repository with
  its parents on purpose, private, with a marker file naming what it is.

On object storage (no :class:`~seawall.storage.base.LocalVolume`) there is
no directory to find or create: :func:`require_storage` and
:func:`ensure_storage` check that the bucket answers with one listing (a
GET, whose error body tells wrong credentials from a missing bucket, which
a HEAD cannot), so a bad URL or key is one line and exit 7 before a run
starts. Whether the key may *write* is learnt at the first write (the
series lock), which fails the same way.

The marker written by ``seawall init`` carries ``format_version``: a
repository laid out by a newer seawall (a later format of the catalog, the
WAL archive or the locks) must not be read or written by this one, which
would misread it or write what the newer one misreads. Every check here
reads the marker when there is one (locally one ``open``; on object storage
the probe's listing already shows whether it exists) and refuses a newer
format with :class:`RepositoryFormatError` (exit 9). A repository without
a marker (made by a first backup rather than ``init``) is format 1; a
marker that cannot be parsed is logged and ignored: a damaged hint must not
stop backups, and a newer seawall writes a readable one.

The lean ``wal-push`` path needs nothing here: it only writes into an
archive whose ``archive.json`` exists, and falls back to the general path
otherwise. The common case of :func:`ensure_repository` is one ``stat``.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from seawall.errors import RefusedError, StorageError
from seawall.log import get_logger
from seawall.storage.base import Storage, storage_error

#: Written by ``seawall init``; says what the directory is to a human with ``ls -a``.
MARKER = ".seawall-repository"

#: the repository layout this seawall reads and writes (the marker's ``format_version``)
REPOSITORY_FORMAT = 1


class RepositoryFormatError(RefusedError):
    """The repository was written by a newer seawall (marker ``format_version``): upgrade seawall."""


class RepositoryMissingError(StorageError):
    """The repository (BACKUP_DIR) does not exist: the volume is not mounted or the path is wrong."""


def _missing(root: Path) -> RepositoryMissingError:
    return RepositoryMissingError(
        f"repository {root} does not exist: mount the backup volume or fix BACKUP_DIR; "
        "to start a new repository there, run `seawall init`"
    )


def check_marker(body: bytes, where: str) -> None:
    """Refuse a marker whose ``format_version`` is newer than :data:`REPOSITORY_FORMAT`."""
    try:
        version = json.loads(body).get("format_version")
    except (ValueError, AttributeError):  # not JSON, or not an object
        version = None
    if not isinstance(version, int) or isinstance(version, bool):
        get_logger().warning(f"{where}: unreadable repository marker ignored (no format_version)")
        return
    if version > REPOSITORY_FORMAT:
        raise RepositoryFormatError(
            f"repository {where} has format {version}, newer than this seawall understands "
            f"({REPOSITORY_FORMAT}): it was written by a newer seawall; upgrade seawall to use it"
        )


def _check_local(root: Path) -> None:
    marker = root / MARKER
    try:
        with open(marker, "rb") as fh:
            body = fh.read(65536)
    except (FileNotFoundError, NotADirectoryError):
        return  # a repository made by a first backup: format 1
    except OSError as exc:
        raise StorageError(f"cannot read {marker}: {exc.strerror}") from None
    check_marker(body, str(root))


def _probe(storage: Storage) -> None:
    """One listing of the marker's key: the bucket exists, the key may list it, and
    the marker, when there is one, names a format this seawall understands."""
    for info in storage.list(MARKER):
        if info.key == MARKER:
            check_marker(storage.read_bytes(MARKER), storage.describe())
        break


def require_storage(storage: Storage) -> None:
    """:func:`require_repository` for any backend (before reading)."""
    vol = storage.local_volume()
    if vol is not None:
        require_repository(vol.root)
    else:
        _probe(storage)


def ensure_storage(storage: Storage) -> None:
    """:func:`ensure_repository` for any backend (before writing)."""
    vol = storage.local_volume()
    if vol is not None:
        ensure_repository(vol.root)
    else:
        _probe(storage)


def require_repository(root: Path) -> None:
    """Refuse to read a repository that is not there (instead of listing nothing)."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise _missing(root) from None
    except OSError as exc:
        raise StorageError(f"cannot reach repository {root}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"repository {root} is not a directory; fix BACKUP_DIR")
    _check_local(root)


def ensure_repository(root: Path) -> None:
    """Before a write: the repository exists, or only its own top directory is created."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot reach repository {root}: {exc.strerror}") from None
    else:
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"repository {root} is not a directory; fix BACKUP_DIR")
        _check_local(root)
        return
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:  # a concurrent writer made it
        return
    except FileNotFoundError:
        raise RepositoryMissingError(
            f"repository {root} does not exist and neither does {root.parent}: is the backup "
            "volume mounted? Fix BACKUP_DIR, or run `seawall init` to create a new repository "
            "with its parent directories"
        ) from None
    except OSError as exc:  # read-only, permission denied, full: the usual hints
        raise storage_error(exc, f"repository {root}") from None
    os.chmod(root, 0o700)  # whatever the umask


def _marker_body() -> bytes:
    body = {
        "format_version": REPOSITORY_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return (json.dumps(body) + "\n").encode()


def init_storage(storage: Storage) -> bool:
    """:func:`init_repository` for any backend; False if it existed.

    On object storage the bucket must exist already (creating buckets, with
    their region, policy and lifecycle, is the operator's decision): a
    missing one is the one-line error of :func:`require_storage`; the
    marker object is written when absent.
    """
    vol = storage.local_volume()
    if vol is not None:
        return init_repository(vol.root)
    _probe(storage)
    if storage.exists(MARKER):
        return False
    storage.write_bytes(MARKER, _marker_body())
    return True


def init_repository(root: Path) -> bool:
    """Create a repository with its parents (0700, marker file); False if it existed."""
    created = False
    try:
        st = os.stat(root)
    except FileNotFoundError:
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(root, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot create repository {root}: {exc.strerror}") from None
        os.chmod(root, 0o700)
        created = True
    else:
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"{root} exists and is not a directory; choose another BACKUP_DIR")
        _check_local(root)
    marker = root / MARKER
    if not marker.exists():
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return created
        except OSError as exc:
            raise StorageError(f"cannot write {marker}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(_marker_body())
    return created
