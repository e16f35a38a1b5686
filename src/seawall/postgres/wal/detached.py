"""The two things both WAL helpers' daemons need: start one detached, hold its spool's lock.

wal-fetch's read-ahead (:mod:`seawall.postgres.wal.readahead`) and
wal-push's asynchronous archiving (:mod:`seawall.postgres.wal.pushahead`,
ADR 0017) each start a daemon from a lean command that PostgreSQL runs once
per segment, and each daemon holds its spool's ``.lock`` for its whole life
so that exactly one runs per spool. One home for both, so that the two
stay alike (own session, no stdio, a failure to start never fails the
command). It imports nothing beyond :mod:`os` at module level: the lean
paths' import budget (tests/integration/wal/test_wal_fast_imports.py).
"""

from __future__ import annotations

import os


def spawn_detached(module: str, spool: str) -> None:
    """Start ``python -m module spool`` in its own session with no stdio; it outlives
    the caller. A failure to start is silent: the caller's own work never needs it."""
    import sys

    devnull = os.devnull
    try:  # noqa: SIM105 - contextlib would be one more import on the hot path
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", module, spool],
            os.environ,
            setsid=True,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
            ],
        )
    except OSError:
        pass


def hold_lock(dir_fd: int, name: str) -> int | None:
    """Hold the flock of ``name`` in the spool ``dir_fd`` (its fd), or None when another
    process holds it. The fd stays open (and the lock held) until the holder exits."""
    import fcntl

    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def open_private_dir(path: str, *, create: bool = True) -> int | None:
    """A descriptor of the spool directory ``path``, made (0700) if missing and ``create``;
    None when it is unusable: missing, a symlink, another owner's, open to others,
    or not creatable. Both spools are optimisations, so they step aside rather than fail."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(path, 0o700)
            fd = os.open(path, flags)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        return None
    return fd
