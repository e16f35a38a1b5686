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

from seawall.errors import StorageError
from seawall.storage.base import storage_error

#: Written by ``seawall init``; says what the directory is to a human with ``ls -a``.
MARKER = ".seawall-repository"


class RepositoryMissingError(StorageError):
    """The repository (BACKUP_DIR) does not exist: the volume is not mounted or the path is wrong."""


def _missing(root: Path) -> RepositoryMissingError:
    return RepositoryMissingError(
        f"repository {root} does not exist: mount the backup volume or fix BACKUP_DIR; "
        "to start a new repository there, run `seawall init`"
    )


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
    marker = root / MARKER
    if not marker.exists():
        body = {"format_version": 1, "created": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return created
        except OSError as exc:
            raise StorageError(f"cannot write {marker}: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(body) + "\n")
    return created
