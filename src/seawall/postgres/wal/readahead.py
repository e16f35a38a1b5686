"""wal-fetch's side of the read-ahead: take a decoded segment from the spool, ask for more.

PostgreSQL runs ``restore_command`` once per segment, serially with
replay, for every recovery: a standby following the archive, a recovery an
operator or an operator framework set up by hand, ``pitr-restore`` without
``--start``. As pgBackRest's ``archive-async`` does, the first lean
``wal-fetch`` starts a detached reader
(:mod:`seawall.postgres.wal.readahead_daemon`) that decodes the next
``WAL_READ_AHEAD`` segments into a spool beside ``%p``; the following
fetches find their segment there, checked, and hand it over with one rename.

The spool is ``<directory of %p>/.seawall-readahead`` (normally
``pg_wal/.seawall-readahead``: the same filesystem as ``%p``, so the hand-over
is a rename and never a copy; PostgreSQL only looks at WAL-shaped names in
pg_wal). It holds:

* ``<segment>-<sha40>``: a decoded segment whose content the reader checked
  against the sha256 in its archive name before giving it that name;
* ``.<segment>.seawall-<pid>``: one being decoded (a dot name nobody takes);
* ``.lock``: flock-ed by the live reader for its whole life;
* ``.requested``: the last segment PostgreSQL asked for.

What wal-fetch takes, and when (never a segment nobody checked):

* only while the reader holds ``.lock``: a spool whose reader is gone (kill
  -9, a reboot, an old spool copied with the data directory) is emptied
  instead, since nothing vouches for it any more;
* only the file named after the archive's *current* single version of the
  segment (the listing wal-fetch does anyway): a spooled copy of a version
  that is no longer archived is never handed over;
* only a regular file (``lstat``, no symlink).

Everything here is cheap (a mkdir once, an flock probe, a small write, a
rename) and imports nothing beyond :mod:`os` and :mod:`fcntl`.
"""

from __future__ import annotations

import os

SPOOL = ".seawall-readahead"
LOCK = ".lock"
#: ``seawall.postgres.physical.prefetch.REQUESTED`` (same protocol)
REQUESTED = ".requested"
DAEMON_MODULE = "seawall.postgres.wal.readahead_daemon"
#: longest wait for a segment the reader is decoding (seconds); then wal-fetch decodes it
WAIT_FOR_READER = 5.0


def spool_path(dest: str) -> str:
    """The spool beside ``dest`` (absolute: the reader runs elsewhere)."""
    return os.path.join(os.path.dirname(os.path.abspath(dest)), SPOOL)


class Spool:
    """The spool as wal-fetch sees it, through a descriptor of the directory."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, dest: str) -> Spool | None:
        """The spool beside ``dest``, created (0700) if needed; None if unusable.

        Unusable: not a directory of ours (a symlink, another owner): the
        read-ahead is an optimisation and stays out of the way.
        """
        from seawall.postgres.wal.detached import open_private_dir

        path = spool_path(dest)
        fd = open_private_dir(path)
        return None if fd is None else cls(path, fd)

    def close(self) -> None:
        os.close(self.fd)

    def reader_alive(self) -> bool:
        """True while a reader holds ``.lock``; if none does, empty the spool."""
        import fcntl

        try:
            lock = os.open(
                LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fd
            )
        except OSError:
            return False
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True  # held: the reader is alive
            # nobody vouches for what is here: remove it (we hold the lock, so
            # no reader starts meanwhile)
            for entry in os.listdir(self.fd):
                if entry != LOCK:
                    try:  # noqa: SIM105 - contextlib would be one more import here
                        os.unlink(entry, dir_fd=self.fd)
                    except OSError:
                        pass
            return False
        finally:
            os.close(lock)

    def take(self, archived_path: str, dest: str) -> bool:
        """Rename the spooled copy of ``archived_path``'s version to ``dest``; False if none.

        If the reader is decoding that very segment right now (its dot-named
        temporary is there), wait for it, up to :data:`WAIT_FOR_READER`
        seconds, rather than decode it a second time on the other core: the
        wait ends as soon as the file gets its name, or the temporary goes
        without it (the reader could not decode it: wal-fetch then does, and
        says why).
        """
        base = archived_path.rsplit("/", 1)[-1]
        spooled = base[: base.index("-") + 41]  # <segment>-<sha40>
        deadline = 0.0
        while True:
            try:
                st = os.stat(spooled, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                if not self._decoding(base[:24]):
                    return False
                import time

                now = time.monotonic()
                deadline = deadline or now + WAIT_FOR_READER
                if now > deadline:
                    return False
                time.sleep(0.005)
                continue
            except OSError:
                return False
            if (st.st_mode & 0o170000) != 0o100000:  # not a regular file
                return False
            try:
                os.rename(spooled, dest, src_dir_fd=self.fd)
            except OSError:  # the reader reaped it just now
                return False
            return True

    def _decoding(self, name: str) -> bool:
        """Is the reader writing ``name``'s temporary (``.<name>.seawall-<pid>``)?"""
        prefix = f".{name}.seawall-"
        try:
            return any(entry.startswith(prefix) for entry in os.listdir(self.fd))
        except OSError:
            return False

    def request(self, name: str) -> None:
        """Tell the reader which segment PostgreSQL asked for (atomically)."""
        tmp = f"{REQUESTED}.{os.getpid()}"
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=self.fd,
            )
            try:
                os.write(fd, name.encode() + b"\n")
            finally:
                os.close(fd)
            os.rename(tmp, REQUESTED, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError:
            pass

    def start_reader(self) -> None:
        """Start a detached reader (its own session, no stdio): it outlives this call;
        none started means no read-ahead, and every fetch still works."""
        from seawall.postgres.wal.detached import spawn_detached

        spawn_detached(DAEMON_MODULE, self.path)
