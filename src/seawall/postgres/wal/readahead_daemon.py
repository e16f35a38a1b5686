"""The read-ahead reader: decode the segments recovery will ask for next into the spool.

Started detached by the lean ``wal-fetch`` (:mod:`seawall.postgres.wal.readahead`,
which describes the spool and what wal-fetch takes from it) as
``python -m seawall.postgres.wal.readahead_daemon SPOOL``, with wal-fetch's
environment. One per spool: it holds ``.lock`` (flock) for its whole life
and exits at once if another reader holds it.

What it does, in a loop: read ``.requested`` (segment N, the last one
PostgreSQL asked for); delete every spooled segment that is not one of
N … N+k on N's timeline (recovery went past it, or followed another
timeline); then decode the first of those not yet spooled, through the
same :func:`~seawall.postgres.wal.fetch.locate` and
:func:`~seawall.postgres.physical.prefetch.SpoolDir.spool_checked` as
``pitr-restore --start``'s prefetcher: the content is checked against the
sha256 in its archive name before the file gets its name
``<segment>-<sha40>``, so a corrupt segment is never spooled (wal-fetch
meets it and stops recovery loudly). Bounds: ``k = WAL_READ_AHEAD``
segments and ``WAL_READ_AHEAD_MAX_MB`` of spooled files, whichever is
smaller. A segment not archived yet (a standby ahead of the archive) is
looked for again after a second; one that does not decode is skipped (for
10 s) and left to wal-fetch, which refuses it loudly.

It ends, removing every file it spooled and the spool directory, when
nobody has asked for anything for ``WAL_READ_AHEAD_IDLE`` seconds (the
recovery ended, the server stopped, a standby stopped asking): a reader
never outlives its use by more than that, and a later wal-fetch starts a new
one. Killed (kill -9), it leaves at most a dot-named temporary and checked
segments; the next wal-fetch finds ``.lock`` free and empties the spool
before taking anything from it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from seawall.postgres.physical.prefetch import SpoolDir
from seawall.postgres.wal.detached import hold_lock
from seawall.postgres.wal.readahead import LOCK, REQUESTED
from seawall.walcore.names import parse_wal_name, segment_name

#: polling of ``.requested``: fast while recovery moves, backing off when idle
MIN_POLL = 0.01
MAX_POLL = 0.5
#: a segment not archived yet is looked for again after this long
MISSING_RETRY = 1.0


class Reader(SpoolDir):
    """The reader's state; :meth:`run` is the loop."""

    def __init__(self, spool: Path) -> None:
        from seawall.postgres.wal.envconfig import config_from, read_env

        super().__init__(spool)
        raw = read_env()
        self.cfg = config_from(raw)
        self.ahead = raw.read_ahead
        self.max_bytes = raw.read_ahead_max_mb << 20
        self.idle = float(raw.read_ahead_idle)
        self.seg_size = self._segment_size()
        self.retry_at: dict[str, float] = {}  # not archived yet: look again after
        self.skip_until: dict[str, float] = {}  # not decodable: skip it until

    def _segment_size(self) -> int:
        from seawall.postgres.wal.archive_info import read_archive_info

        info = read_archive_info(self.cfg.storage, self.cfg.cluster)
        return info.wal_segment_size if info is not None else 16 << 20

    def lock(self) -> int | None:
        """Hold ``.lock`` (None: another reader does)."""
        return hold_lock(self.fd, LOCK)

    def targets(self) -> list[str]:
        """N, N+1 … N+k for the segment N last requested (empty if none yet).

        N itself is never decoded (wal-fetch is at it), only kept if spooled:
        wal-fetch writes the request before it takes N's copy.
        """
        text = self.read_small(REQUESTED)
        try:
            wal = parse_wal_name((text or "").strip(), self.seg_size)
        except ValueError:
            return []
        if wal.segno is None:
            return []
        return [
            segment_name(wal.timeline, wal.segno + i, self.seg_size) for i in range(self.ahead + 1)
        ]

    def last_request(self) -> float:
        try:
            return os.stat(REQUESTED, dir_fd=self.fd, follow_symlinks=False).st_mtime
        except OSError:
            return 0.0

    def spooled(self) -> dict[str, tuple[str, int]]:
        """segment name -> (file name, size) of every checked segment in the spool."""
        out: dict[str, tuple[str, int]] = {}
        for entry in os.listdir(self.fd):
            name, dash, sha = entry.partition("-")
            if entry.startswith(".") or not dash or len(sha) != 40:
                continue
            with contextlib.suppress(OSError):
                out[name] = (entry, os.stat(entry, dir_fd=self.fd, follow_symlinks=False).st_size)
        return out

    def step(self) -> bool:
        """One round; True if a segment was decoded (look again at once)."""
        targets = self.targets()
        spooled = self.spooled()
        for name, (entry, _) in list(spooled.items()):
            if name not in targets:  # recovery went past it, or another timeline
                with contextlib.suppress(OSError):
                    os.unlink(entry, dir_fd=self.fd)
                del spooled[name]
        used = sum(size for _, size in spooled.values())
        now = time.monotonic()
        for name in targets[1:]:
            if name in spooled or self.skip_until.get(name, 0) > now:
                continue  # spooled, or undecodable: wal-fetch will say why
            if used + self.seg_size > self.max_bytes or self.retry_at.get(name, 0) > now:
                return False  # full, or not archived yet (nor, likely, what follows)
            return self._decode(name)
        return False

    def _decode(self, name: str) -> bool:
        from seawall.errors import NotFoundError
        from seawall.postgres.wal.fetch import locate

        try:
            located = locate(self.cfg, name)
            self.spool_checked(self.cfg, located, f"{name}-{located.obj.sha256_prefix}")
        except NotFoundError:  # not archived yet: a standby ahead of the archive
            self.retry_at[name] = time.monotonic() + MISSING_RETRY
            return False
        except Exception:  # corrupt, wrong key...: wal-fetch will meet it and say why
            self.skip_until[name] = time.monotonic() + 10 * MISSING_RETRY
            return True  # go on with the next one
        self.retry_at.pop(name, None)
        return True

    def run(self) -> None:
        """Until nobody asked for anything for ``idle`` seconds.

        "Asked" is a change of ``.requested``'s mtime (wal-fetch rewrites it on
        every segment), timed on the monotonic clock: a clock step or an mtime
        in the future cannot keep the reader alive.
        """
        poll, seen = MIN_POLL, self.last_request()
        changed = time.monotonic()
        while time.monotonic() - changed < self.idle:
            asked = self.last_request()
            if asked != seen:  # a new request: look closely again
                poll, seen, changed = MIN_POLL, asked, time.monotonic()
            if self.step():
                continue
            time.sleep(poll)
            poll = min(MAX_POLL, poll * 2)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        return 2
    try:
        reader = Reader(Path(argv[0]))
    except Exception:  # no spool, bad configuration: wal-fetch works without us
        return 1
    lock = reader.lock()
    if lock is None:  # another reader is at work
        return 0
    try:
        if reader.ahead > 0:
            reader.run()
    finally:
        reader._remove_spool()  # everything, .lock included, then the directory
        os.close(lock)
    return 0


if __name__ == "__main__":  # pragma: no cover - run by wal-fetch
    sys.exit(main(sys.argv[1:]))
