"""The asynchronous WAL pusher (ADR 0017): archive what PostgreSQL asks for next, mark it.

Started detached by the lean ``wal-push`` (:mod:`seawall.postgres.wal.pushahead`,
which describes the spool and when a marker is believed) as
``python -m seawall.runner.wal_pusher SPOOL``, with wal-push's
environment. One per spool: it holds ``.lock`` (flock) for its whole life
and exits at once if another pusher holds it.

What it does, in a loop: read ``.requested`` (segment N, the last one
PostgreSQL asked for, and the repository it was asked for); list
``archive_status/*.ready`` in the directory the spool is in (pg_wal); keep
the complete segments on N's timeline after N (never ``.partial``,
``.history`` or ``.backup``: PostgreSQL archives those itself, in the
foreground), the first ``WAL_PUSH_AHEAD`` of them in name order; archive
those not yet marked, two at a time (``PUSH_WORKERS``, one per CPU of the
2-CPU machines this runs on), each with
:func:`seawall.runner.wal_fast.main` — the very code, checks, refusals and
mirror handling of a foreground ``wal-push`` — and, only when that returned
0, write the segment's marker (atomically: a dot-named temporary renamed).
Into an ``s3://`` repository the pushes keep their connections open from one
segment to the next (``s3push.ClientPool``: one per push in flight), where a
foreground ``wal-push`` connects (TCP, TLS) for each segment.
A segment whose push fails is tried again after ``RETRY`` seconds; its
``wal-push`` from PostgreSQL meanwhile pushes it in the foreground and says
why it fails.

Markers PostgreSQL no longer needs (no ``.ready`` for them any more: the
segment was archived, by a foreground push or a retry) are deleted.

It ends when nobody has asked for anything for ``WAL_PUSH_AHEAD_IDLE``
seconds, when ``.requested`` names another repository (the operator changed
``BACKUP_DIR`` or ``PG_CLUSTER_NAME``: the next wal-push starts a pusher
with the new environment), or when its directory is gone. Killed (kill -9)
mid-push, it leaves at most ``.<segment>.pushing`` (its lock gone with it) and a
dot-named marker temporary, never a marker: the marker is written after the
push returned. Each push holds ``.<segment>.pushing`` (flock), as PostgreSQL's
wal-push does after a miss, so the two never push one segment at once.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

from seawall.postgres.wal.detached import hold_lock
from seawall.postgres.wal.pushahead import (
    LOCK,
    PUSHING,
    REQUESTED,
    Spool,
    file_identity,
    is_segment,
    marker_text,
    push_ahead,
    repository_identity,
)
from seawall.postgres.wal.s3push import ClientPool

#: pushes in flight at once (the machines this runs on have 2 CPUs; zstd uses both anyway)
PUSH_WORKERS = 2
#: a segment whose push failed is tried again after this long (seconds)
RETRY = 5.0
MIN_POLL = 0.005
MAX_POLL = 0.25


class Pusher:
    """The pusher's state; :meth:`run` is the loop."""

    def __init__(self, spool: str) -> None:
        from seawall.walcore.env import read_wal_env

        self.spool = spool
        self.pg_wal = os.path.dirname(spool)
        self.status = os.path.join(self.pg_wal, "archive_status")
        self.fd = os.open(spool, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.spool_dir = Spool(spool, self.fd)
        raw = read_wal_env()
        self.ahead = push_ahead()
        self.idle = float(raw.push_ahead_idle)
        self.repo = repository_identity()
        self.busy: set[str] = set()
        self.retry_at: dict[str, float] = {}
        self.mutex = threading.Lock()
        self.finished = threading.Condition(self.mutex)
        # one open S3 connection per push in flight, kept from segment to segment
        self.clients = ClientPool()

    def lock(self) -> int | None:
        """Hold ``.lock`` (None: another pusher does)."""
        return hold_lock(self.fd, LOCK)

    def clean_temporaries(self) -> None:
        """What a killed pusher left: marker temporaries, and ``.<seg>.pushing`` files
        nobody holds (a wal-push holding one is pushing that segment: left alone)."""
        for entry in os.listdir(self.fd):
            if not (entry.startswith(".") and is_segment(entry[1:25]) and len(entry) > 25):
                continue
            if entry.endswith(PUSHING):
                lock = self.spool_dir.lock_segment(entry[1:25], wait=False)
                if lock is not None:
                    self.spool_dir.unlock_segment(entry[1:25], lock)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry, dir_fd=self.fd)

    def requested(self) -> tuple[str, str, int]:
        """(segment, repository, mtime_ns) of the last request; ("", "", 0) if none."""
        try:
            fd = os.open(REQUESTED, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError:
            return "", "", 0
        try:
            mtime = os.fstat(fd).st_mtime_ns
            lines = os.read(fd, 4096).decode("utf-8", "replace").split("\n")
        finally:
            os.close(fd)
        if len(lines) < 2 or not is_segment(lines[0]):
            return "", "", mtime
        return lines[0], lines[1], mtime

    def ready(self) -> set[str]:
        """Complete segments PostgreSQL has yet to archive (``archive_status/*.ready``)."""
        return {
            entry[:-6]
            for entry in os.listdir(self.status)
            if entry.endswith(".ready") and is_segment(entry[:-6])
        }

    def markers(self, ready: set[str]) -> set[str]:
        """The markers in the spool; on the way, drop the ``.<seg>.pushing`` files of
        segments archived meanwhile that nobody holds (a killed wal-push's)."""
        out = set()
        for entry in os.listdir(self.fd):
            if is_segment(entry):
                out.add(entry)
            elif (
                entry.endswith(PUSHING)
                and entry[1:25] not in ready
                and entry[1:25] not in self.busy
            ):
                lock = self.spool_dir.lock_segment(entry[1:25], wait=False)
                if lock is not None:
                    self.spool_dir.unlock_segment(entry[1:25], lock)
        return out

    def step(self, current: str) -> bool:
        """One round after request ``current``; True if a push was started."""
        ready = self.ready()
        marked = self.markers(ready)
        for name in marked - ready:  # PostgreSQL is done with it
            if name != current:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=self.fd)
        timeline = current[:8]
        targets = sorted(n for n in ready if n[:8] == timeline and n > current)[: self.ahead]
        now = time.monotonic()
        started = False
        with self.mutex:
            for name in targets:
                if len(self.busy) >= PUSH_WORKERS:
                    break
                if name in marked or name in self.busy or self.retry_at.get(name, 0) > now:
                    continue
                self.busy.add(name)
                threading.Thread(target=self._push, args=(name,), daemon=True).start()
                started = True
        return started

    def _push(self, name: str) -> None:
        from seawall.runner.wal_fast import main as wal_main

        path = os.path.join(self.pg_wal, name)
        # held while pushing: PostgreSQL's wal-push of this segment waits for the marker
        # instead of pushing it a second time; held by that wal-push: leave it to it
        lock = self.spool_dir.lock_segment(name, wait=False)
        ok = False
        try:
            if lock is not None and os.path.exists(
                os.path.join(self.status, f"{name}.ready")
            ):  # still waiting to be archived
                before = file_identity(os.stat(path))
                code = wal_main(["wal-push", path], push_ahead=False, s3_clients=self.clients)
                if code == 0 and file_identity(os.stat(path)) == before:
                    self._mark(name, before)
                    ok = True
        except Exception:  # no marker: PostgreSQL's wal-push does it and says why
            pass
        finally:
            if lock is not None:  # after the marker: a waiting wal-push finds it
                self.spool_dir.unlock_segment(name, lock)
            with self.mutex:
                self.busy.discard(name)
                if not ok:
                    self.retry_at[name] = time.monotonic() + RETRY
                self.finished.notify_all()

    def _mark(self, name: str, ident: str) -> None:
        """Write ``name``'s marker: after the push committed, atomically."""
        tmp = f".{name}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=self.fd
        )
        try:
            data = marker_text(self.repo, ident, name)
            if os.write(fd, data) != len(data):
                raise OSError("short write")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            raise
        os.close(fd)
        os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def run(self) -> None:
        """Until nobody asked for ``idle`` seconds (monotonic clock), the repository
        changed, or the spool or pg_wal went away."""
        poll, seen = MIN_POLL, -1
        changed = time.monotonic()
        while True:
            current, repo, mtime = self.requested()
            if repo and repo != self.repo:
                return
            if mtime != seen:
                poll, seen, changed = MIN_POLL, mtime, time.monotonic()
            with self.mutex:
                idle = not self.busy
            if idle and time.monotonic() - changed >= self.idle:
                return
            if current and self.step(current):
                continue
            with self.mutex:  # a push ending is a reason to look again at once
                self.finished.wait(poll)
            poll = min(MAX_POLL, poll * 2)

    def drain(self) -> None:
        """Wait for the pushes in flight (their markers are worth having)."""
        with self.mutex:
            while self.busy:
                self.finished.wait(1.0)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        return 2
    try:
        pusher = Pusher(argv[0])
        lock = pusher.lock()
    except Exception:  # no spool, bad configuration: wal-push works without us
        return 1
    if lock is None:  # another pusher is at work
        return 0
    try:
        pusher.clean_temporaries()
        if pusher.ahead > 0:
            pusher.run()
        pusher.drain()
    except OSError:  # the spool or pg_wal is gone (the cluster was removed)
        pass
    finally:
        pusher.clients.close()
        os.close(lock)
    return 0


if __name__ == "__main__":  # pragma: no cover - run by wal-push
    sys.exit(main(sys.argv[1:]))
