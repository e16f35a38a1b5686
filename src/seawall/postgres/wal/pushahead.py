"""wal-push's side of asynchronous archiving: take a marker from the spool, or push and ask.

PostgreSQL runs ``archive_command`` once per segment, serially: each one
pays an interpreter, the imports, zstd and the upload before PostgreSQL may
start the next (ADR 0013's profile: ~150 ms to S3 over TLS). As pgBackRest's
``archive-async`` does, with ``WAL_PUSH_AHEAD`` > 0 the first lean
``wal-push`` of a segment starts a detached pusher
(:mod:`seawall.runner.wal_pusher`) that archives the next
``.ready`` segments in the background, with the very code a foreground push
runs, and leaves a *marker* for each one it committed; the ``wal-push`` that
PostgreSQL runs for such a segment then finds the marker and exits 0 at
once (docs/adr/0017-asynchronous-wal-archiving.md).

The spool is ``<directory of %p>/.seawall-pushed`` (normally
``pg_wal/.seawall-pushed``; PostgreSQL only looks at WAL-shaped names in
pg_wal). It holds:

* ``<segment>``: a marker, written by the pusher only *after* its push
  exited 0 (the primary holds the segment durably, mirrors handled as in a
  foreground push);
* ``.<segment>.pushing``: flock-ed by whoever pushes that segment now (the
  pusher, or PostgreSQL's wal-push after a miss): one push of a segment at a
  time, and a wal-push that finds the pusher at its segment waits for it;
* ``.<segment>.<pid>``: a marker being written (a dot name nobody reads);
* ``.lock``: flock-ed by the live pusher for its whole life;
* ``.requested``: the last segment PostgreSQL asked for, and the repository.

What a marker must say before wal-push believes it (else the segment is
pushed in the foreground, exactly as without the pusher):

* the repository this wal-push would write to (``BACKUP_DIR`` and
  ``PG_CLUSTER_NAME`` as read now): a marker from another repository, or
  from before the operator changed it, proves nothing about this one;
* the identity of the file ``%p`` names now (device, inode, size, mtime
  and ctime in nanoseconds): a marker for a file that was since rewritten,
  recycled under the name or replaced by another cluster's is not believed;
* a regular file of ours in a directory of ours (mode 0700), no symlink.

A marker is evidence about an object already stored durably, not about a
live process, so unlike the read-ahead's spool it stays valid after the
pusher exits or is killed (kill -9 can only leave a dot-named temporary).

The hit path imports nothing beyond :mod:`os` and the light option reader.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

SPOOL = ".seawall-pushed"
LOCK = ".lock"
REQUESTED = ".requested"
PUSHING = ".pushing"
DAEMON_MODULE = "seawall.runner.wal_pusher"
MARKER_MAGIC = "seawall-pushed 1"
_HEX = frozenset("0123456789ABCDEF")


def is_segment(name: str) -> bool:
    """A complete WAL segment's name (never .partial, .history, .backup)."""
    return len(name) == 24 and all(c in _HEX for c in name)


def push_ahead(env: Mapping[str, str] | None = None) -> int:
    """``WAL_PUSH_AHEAD`` (0 = off). An invalid value raises ``WalEnvError`` (one line
    naming it): wal-push exits 2 as every other command does, never "off" quietly and
    never a marker believed under a value the operator did not mean."""
    from seawall.walcore.env import as_count, read_value

    return as_count("WAL_PUSH_AHEAD", read_value("wal_push_ahead", env), 0, 0)


def repository_identity(env: Mapping[str, str] | None = None) -> str:
    """The repository a push writes to: ``BACKUP_DIR`` and ``PG_CLUSTER_NAME``, one line."""
    from seawall.walcore.env import read_value

    backup_dir = str(read_value("backup_dir", env) or "/backups").rstrip("/")
    cluster = str(read_value("pg_cluster_name", env) or "main")
    return f"{backup_dir!r} {cluster!r}"


def file_identity(st: os.stat_result) -> str:
    """Device, inode, size, mtime and ctime (ns) of a segment file: any rewrite,
    rename onto the name or replacement changes at least one of them."""
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def marker_text(repo: str, ident: str, key: str) -> bytes:
    return f"{MARKER_MAGIC}\n{repo}\n{ident}\n{key}\n".encode()


def spool_path(path: str) -> str:
    """The spool beside ``path`` (absolute: the pusher runs elsewhere)."""
    return os.path.join(os.path.dirname(os.path.abspath(path)), SPOOL)


class Spool:
    """The spool as wal-push sees it, through a descriptor of the directory."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, segment_path: str, *, create: bool = True) -> Spool | None:
        """The spool beside ``segment_path``, created (0700) if needed; None if unusable
        (not a directory of ours, read-only, missing): the foreground push then works alone."""
        from seawall.postgres.wal.detached import open_private_dir

        path = spool_path(segment_path)
        fd = open_private_dir(path, create=create)
        return None if fd is None else cls(path, fd)

    def close(self) -> None:
        os.close(self.fd)

    def marker(self, name: str) -> str | None:
        """The text of ``name``'s marker (None: there is none; "": there is something
        that is not a regular file of ours, e.g. a symlink)."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError:
            return ""
        try:
            st = os.fstat(fd)
            if (st.st_mode & 0o170000) != 0o100000 or st.st_uid != os.geteuid():
                return ""
            return os.read(fd, 4096).decode("utf-8", "replace")
        except OSError:
            return ""
        finally:
            os.close(fd)

    def take(self, name: str, repo: str, ident: str) -> bool:
        """True if ``name``'s marker vouches for this repository and this very file;
        it is removed then (PostgreSQL is done with it). A marker that does not
        match is removed too: nothing will ever match it again."""
        text = self.marker(name)
        if text is None:
            return False
        lines = text.split("\n")
        good = len(lines) >= 4 and lines[:3] == [MARKER_MAGIC, repo, ident]
        try:  # noqa: SIM105 - contextlib would be one more import here
            os.unlink(name, dir_fd=self.fd)
        except OSError:
            pass  # a twin wal-push took it, or a read-only spool: the marker still held
        return good

    def pusher_alive(self) -> bool:
        """True while a pusher holds ``.lock``."""
        import fcntl

        try:
            lock = os.open(
                LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fd
            )
        except OSError:
            return False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(lock)  # releases our probe's lock, if we got it
        return False

    def lock_segment(self, name: str, *, wait: bool) -> int | None:
        """Hold ``.<name>.pushing`` (flock): whoever pushes ``name`` — the pusher or
        PostgreSQL's wal-push — holds it, so the two never push one segment at once
        (two copy steps of one key would race in the mirrors' records). ``wait``:
        block until the holder is done (the kernel releases a killed holder's lock).
        None: not waiting and held by another, or the spool cannot be written."""
        import fcntl

        path = f".{name}{PUSHING}"
        while True:
            try:
                fd = os.open(
                    path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                    dir_fd=self.fd,
                )  # fmt: skip
            except OSError:
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
                st = os.stat(path, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:  # its holder removed it as we locked: again
                os.close(fd)
                continue
            except OSError:
                os.close(fd)
                return None
            if st.st_ino == os.fstat(fd).st_ino:
                return fd
            os.close(fd)  # replaced meanwhile: lock the file the name holds now

    def unlock_segment(self, name: str, fd: int) -> None:
        """Remove ``.<name>.pushing`` while holding it, then let go."""
        try:  # noqa: SIM105
            os.unlink(f".{name}{PUSHING}", dir_fd=self.fd)
        except OSError:
            pass
        os.close(fd)

    def request(self, name: str, repo: str) -> bool:
        """Tell the pusher which segment PostgreSQL asked for (atomically); False if the
        spool cannot be written (read-only, full): no pusher is started then."""
        tmp = f"{REQUESTED}.{os.getpid()}"
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=self.fd,
            )
            try:
                data = f"{name}\n{repo}\n".encode()
                if os.write(fd, data) != len(data):
                    raise OSError("short write")
            finally:
                os.close(fd)
            os.rename(tmp, REQUESTED, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError:
            try:  # noqa: SIM105
                os.unlink(tmp, dir_fd=self.fd)
            except OSError:
                pass
            return False
        return True

    def start_pusher(self) -> None:
        """Start a detached pusher (its own session, no stdio): it outlives this call;
        none started means every push is done in the foreground."""
        from seawall.postgres.wal.detached import spawn_detached

        spawn_detached(DAEMON_MODULE, self.path)


def already_pushed(path: str) -> bool:
    """True when the pusher archived ``path`` (this very file, into this repository).

    False: wal-push archives it in the foreground, exactly as without the
    pusher (so every error reaches PostgreSQL's log with its exit code). On
    the way, it makes sure a pusher runs for the segments after this one.
    """
    name = os.path.basename(path)
    if push_ahead() <= 0 or not is_segment(name):  # an invalid value raises, whatever the name
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False  # the foreground push says what is wrong
    spool = Spool.open(path)
    if spool is None:
        return False
    repo, ident = repository_identity(), file_identity(st)
    requested = spool.request(name, repo)
    if spool.take(name, repo, ident):
        spool.close()
        return True
    if not requested:  # a spool that cannot be written: no pusher, a plain push
        spool.close()
        return False
    if not spool.pusher_alive():
        spool.start_pusher()
    # the pusher may be pushing this very segment: wait for it (it writes the marker
    # before letting go), then hold the segment while pushing it ourselves, so the
    # pusher leaves it alone; the lock ends with this process
    lock = spool.lock_segment(name, wait=True)
    if lock is not None and spool.take(name, repo, ident):
        spool.unlock_segment(name, lock)
        spool.close()
        return True
    if lock is not None:
        _HELD.append((spool, name, lock))
    else:
        spool.close()
    return False


#: the segment lock a foreground push holds until its process ends (see already_pushed)
_HELD: list[tuple[Spool, str, int]] = []


def release_held() -> None:
    """Let go of the segment lock ``already_pushed`` left held (after the foreground push)."""
    while _HELD:
        spool, name, lock = _HELD.pop()
        spool.unlock_segment(name, lock)
        spool.close()
