"""The claim on a WAL name: who may decide "not archived yet" and commit a version.

Deciding that the name is free and renaming into it is one atomic step under
the claim: two pushes of one name with different content, started together
(a primary and a standby with ``archive_mode=always``), would otherwise both
see no version, both rename, and both exit 0 (ADR 0008). The lean and the
general wal-push both take it, around the re-check and the rename only, after
the expensive part (hash, compress, encrypt, fdatasync), so it costs a
create, an ``flock`` and an unlink per push.
"""

from __future__ import annotations

import os

from seawall.postgres.wal.lean import unlink_quietly
from seawall.walcore.layout import CLAIM_SUFFIX


def claim(directory: str, name: str) -> int:
    """Hold the claim on WAL name ``name`` in ``directory``; returns its descriptor.

    An exclusive ``flock`` on ``<directory>/<name>.claim.partial-00000000``:
    whoever holds it is the only process that may decide "no version of this
    name is archived" and rename one into place. It waits for a holder
    (whose critical section is a listing and a rename). The kernel drops
    the lock when its holder dies, so a kill -9 never wedges the name: the
    next push opens the file left behind and takes it.

    :func:`release` unlinks the file while still holding the lock. A waiter
    may have opened that unlinked file; it then holds a lock nobody else
    can see, so after locking it checks that the path still names the file
    it locked, and starts over if not.
    """
    import fcntl

    path = f"{directory}/{name}{CLAIM_SUFFIX}"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError:
            # left by another user (root pushing by hand, then killed):
            # a shared descriptor still takes an exclusive flock locally
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            now = os.stat(path)
        except FileNotFoundError:  # released (unlinked) while we waited
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_ino, held.st_dev) == (now.st_ino, now.st_dev):
            return fd
        os.close(fd)


def release(fd: int, directory: str, name: str) -> None:
    """Give up the claim of :func:`claim` (the lock file goes, then the lock)."""
    try:
        unlink_quietly(f"{directory}/{name}{CLAIM_SUFFIX}")
    finally:
        os.close(fd)
