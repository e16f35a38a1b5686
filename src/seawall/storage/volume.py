"""Helpers for what is local by design: private directories, fsync of a directory.

Why a module of their own: the layers above ``storage/`` never import a
backend (``seawall.storage.local`` / ``seawall.storage.s3``, an import
contract), yet flock locks, the general wal-push's claim and the lean
paths work on the directory a :class:`~seawall.storage.base.LocalVolume`
hands out, and must create it with the repository's private modes.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

#: The repository is private (docs/design.md invariant 11): whatever the
#: caller's umask, what seawall creates is readable by its own uid only. An
#: unencrypted dump holds the whole database and globals.sql the roles'
#: password hashes; the exporter runs as the same uid (charts/seawall).
DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700.

    ``Path.mkdir(parents=True)`` creates the parents 0777 minus the umask
    (0755 under the usual 022); ``mkdir``'s mode is only ever narrowed by
    the umask, so 0700 stays 0700 under any umask that lets the owner in.
    Raises OSError (ENOTDIR when a component is a regular file).
    """
    missing = []
    cur = path
    while not cur.is_dir():
        missing.append(cur)
        if cur.parent == cur:
            break
        cur = cur.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            if not d.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(d)
                ) from None


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
