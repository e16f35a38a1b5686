"""The two things both WAL helpers' daemons need: start one detached, hold its spool's lock.

wal-fetch's read-ahead (:mod:`seawall.postgres.wal.readahead`) and
wal-push's asynchronous archiving (:mod:`seawall.postgres.wal.pushahead`,
ADR 0017) each start a daemon from a lean command that PostgreSQL runs once
per segment, and each daemon holds its spool's ``.lock`` for its whole life
so that exactly one runs per spool. One home for both, so that the two
stay alike (own session, no stdio, a failure to start never fails the
command). It imports nothing beyond :mod:`os` at module level: the lean
paths' import budget (tests/integration/wal/test_wal_fast_imports.py).

A daemon is never started directly: ``python -m seawall.postgres.wal.detached
MODULE:SPOOL`` is a tiny supervisor that starts it, waits for it and always
exits 0 (ADR 0018). The command that started it exits at once, so the
supervisor is re-parented to the container's PID 1; when that is
PostgreSQL's postmaster, any child of its own that ends by a signal is a
crashed backend to it, and it terminates every session and reinitialises
(postmaster.c, CleanupBackend). A daemon killed by kill -9 or the OOM
killer is reaped by its supervisor instead, and what the postmaster reaps
ends with 0. The supervisor ignores SIGHUP, SIGINT and SIGTERM (it starts
with them blocked, so none arrives before it ignores them); the daemon gets
them back at their defaults. Its command line names the module and the
spool in one argument, so only the daemon's own has them as two
(tests/integration/wal/asynchelpers.py finds the pusher by them).
"""

from __future__ import annotations

import os

#: this module run as a program: the supervisor
SUPERVISOR = "seawall.postgres.wal.detached"
#: SIGHUP, SIGINT, SIGTERM: the numbers POSIX's kill utility fixes (importing the
#: signal module costs the lean commands ~8 ms of enum; a test checks they agree)
HELD_OFF = (1, 2, 15)


def spawn_detached(module: str, spool: str) -> None:
    """Start ``python -m module spool`` under a supervisor in its own session, with no
    stdio; it outlives the caller. A failure to start is silent: the caller's own work
    never needs it."""
    import sys

    devnull = os.devnull
    try:  # noqa: SIM105 - contextlib would be one more import on the hot path
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", SUPERVISOR, f"{module}:{spool}"],
            os.environ,
            setsid=True,
            setsigmask=HELD_OFF,  # until the supervisor ignores them
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
            ],
        )
    except OSError:
        pass


def supervise(target: str) -> int:
    """Run ``MODULE:SPOOL``'s daemon and wait for it; 0 whatever becomes of it.

    The daemon is a child of ours, so its end, by a signal or not, is ours
    to reap; what the container's PID 1 reaps is this process, ending with 0.
    """
    import signal
    import sys

    for sig in HELD_OFF:
        signal.signal(sig, signal.SIG_IGN)  # a pending one is discarded here
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    module, _, spool = target.partition(":")
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", module, spool],
            os.environ,
            setsigdef=HELD_OFF,  # the daemon's own: the defaults, as if started directly
        )
        os.waitpid(pid, 0)  # EINTR is retried (PEP 475)
    except Exception:  # nothing started, or nothing left to wait for: nothing to report
        pass
    return 0


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


if __name__ == "__main__":  # pragma: no cover - run by spawn_detached
    import sys

    code = supervise(sys.argv[1]) if len(sys.argv) == 2 else 0
    os._exit(code)  # no interpreter teardown: nothing in it may turn this into non-zero
