"""Decode the WAL segments recovery will ask for next, while it replays.

PostgreSQL runs ``restore_command`` once per 16 MiB segment, serially with
replay: while ``seawall wal-fetch`` starts Python, decrypts and
decompresses, the startup process waits, and the other core idles. With
``pitr-restore --start`` seawall is waiting anyway, so a thread of that
process decodes the next segments of the planned path into a *spool*
directory beside the data dir (in the 0700 sidecar), as pgBackRest's
``archive-get`` async queue does. The restore_command wrapper takes a
spooled segment with one ``mv``; anything not spooled (a history file, the
probe past the end, a segment the prefetcher could not decode) still goes
through ``wal-fetch``, so a corrupt or missing segment fails exactly as
before (loud / quiet), because the prefetcher never spools what
``wal-fetch`` would refuse: it decodes with the same
:func:`~seawall.postgres.wal.fetch.decode_checked`, which checks the
content against the sha256 in the archive key before the file gets its
name.

Flow control: the wrapper writes the name it is asked for into
``.requested``; the prefetcher stays at most ``ahead`` segments beyond it
and deletes spooled segments recovery has gone past (a wrong guess, e.g. on
another timeline, costs disk for a while, never correctness: a spooled file
is the archived file of that exact name).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from seawall.log import get_logger
from seawall.pipeline.keys import KeyRing
from seawall.postgres.wal.envconfig import WalConfig
from seawall.postgres.wal.fetch import Located, decode_checked, locate
from seawall.walcore.names import parse_wal_name

log = get_logger("postgres.pitr.prefetch")

REQUESTED = ".requested"
DEFAULT_AHEAD = 8


@dataclass
class PrefetchStats:
    planned: int = 0
    spooled: int = 0
    discarded: int = 0  # spooled but recovery went past it
    failed: int = 0  # left to wal-fetch (it reports the reason)

    @property
    def used(self) -> int:
        """Segments the restore_command wrapper took from the spool (so far)."""
        return self.spooled - self.discarded


def _segno(name: str) -> int | None:
    try:
        return parse_wal_name(name).segno
    except ValueError:
        return None


class SpoolDir:
    """A spool directory handled through one descriptor of it, as created.

    Every file operation goes through this descriptor (no path lookups, no
    symlinks followed): the spool belongs to the server's user, and the
    process writing into it may run as root, so a path swapped for a
    symlink must not lead root's writes elsewhere. Shared by the PITR
    prefetcher below and wal-fetch's read-ahead
    (:mod:`seawall.postgres.wal.readahead_daemon`).
    """

    def __init__(self, spool: Path, owner: tuple[int, int] | None = None) -> None:
        self.spool = spool
        self.owner = owner
        self._dir = os.open(spool, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    @property
    def fd(self) -> int:
        return self._dir

    def _remove_spool(self) -> None:
        """Empty the spool through the descriptor, then remove it."""
        with contextlib.suppress(OSError):
            for entry in os.listdir(self._dir):
                with contextlib.suppress(OSError):
                    os.unlink(entry, dir_fd=self._dir)
        with contextlib.suppress(OSError):
            os.close(self._dir)
        with contextlib.suppress(OSError):
            os.rmdir(self.spool)  # an empty directory, or nothing (not a symlink's target)

    def _exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self._dir, follow_symlinks=False)
        except OSError:
            return False
        return True

    def read_small(self, name: str) -> str | None:
        """The text of small file ``name`` in the spool (None if unreadable)."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir)
            try:
                return os.read(fd, 256).decode("ascii", "replace")
            finally:
                os.close(fd)
        except OSError:
            return None

    def spool_checked(self, cfg: WalConfig, located: Located, final: str) -> None:
        """Decode ``located`` into a temporary in the spool, check it, name it ``final``.

        The same checks as wal-fetch (:func:`decode_checked`); the file gets
        the server's owner before it appears under its name. ``O_EXCL`` and
        ``O_NOFOLLOW`` refuse a planted entry; rename replaces a directory
        entry without following it. A kill -9 leaves at most the dot-named
        temporary, which no reader takes.
        """
        tmp = f".{located.name}.seawall-{os.getpid()}"
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=self._dir,
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                decode_checked(cfg, located, fh)
                if self.owner is not None:
                    os.fchown(fh.fileno(), *self.owner)
            os.rename(tmp, final, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self._dir)
            raise


class Prefetcher(SpoolDir):
    """One background thread that keeps the spool ``ahead`` segments ahead."""

    def __init__(
        self,
        *,
        backup_dir: str | Path,
        cluster: str,
        keys: KeyRing,
        names: list[str],
        spool: Path,
        owner: tuple[int, int] | None,
        ahead: int = DEFAULT_AHEAD,
    ) -> None:
        self.cfg = WalConfig(backup_dir=str(backup_dir), cluster=cluster, keys=keys)
        self.names = [n for n in names if _segno(n) is not None]
        super().__init__(spool, owner)
        self.ahead = max(1, ahead)
        self.stats = PrefetchStats(planned=len(self.names))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-prefetch", daemon=True)
        self._spooled: dict[str, int] = {}  # name -> segno, still in the spool
        self._last_requested: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> PrefetchStats:
        """Stop the thread, count what is left unused, remove the spool."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._thread.is_alive():
            # A decode is still running (slow storage): leave the bookkeeping
            # to it rather than race it; the spool is removed either way.
            log.warning("WAL prefetch thread still busy after 30 s; removing its spool")
            self._remove_spool()
            return self.stats
        self._reap(None)
        for name in list(self._spooled):
            if self._exists(name):
                self.stats.discarded += 1
        self._spooled.clear()
        self._remove_spool()
        return self.stats

    # --- the thread -----------------------------------------------------

    def _requested(self) -> int | None:
        """Segment number recovery asked for last (None: no segment yet).

        Sticky: a history file name, or the file caught half-written by the
        wrapper's ``echo``, keeps the previous answer.
        """
        text = self.read_small(REQUESTED)
        segno = None if text is None else _segno(text.strip())
        if segno is not None:
            self._last_requested = segno
        return self._last_requested

    def _reap(self, requested: int | None) -> None:
        """Forget spooled files recovery took; delete those it went past."""
        for name, segno in list(self._spooled.items()):
            if not self._exists(name):
                del self._spooled[name]  # taken by the wrapper
            elif requested is not None and segno < requested:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=self._dir)
                    self.stats.discarded += 1
                del self._spooled[name]

    def _run(self) -> None:
        first = _segno(self.names[0]) if self.names else None
        requested: int | None = None
        for name in self.names:
            segno = _segno(name)
            assert segno is not None
            while not self._stop.is_set():
                requested = self._requested()
                self._reap(requested)
                floor = requested if requested is not None else first
                if floor is None or segno - floor <= self.ahead:
                    break
                self._stop.wait(0.02)
            if self._stop.is_set():
                return
            if requested is not None and segno < requested:
                continue  # recovery is already past it
            try:
                self._spool_one(name)
            except Exception as exc:  # wal-fetch will meet it again and say why
                self.stats.failed += 1
                log.debug("prefetch of %s failed (%s); wal-fetch will handle it", name, exc)
                continue
            self._spooled[name] = segno
            self.stats.spooled += 1

    def _spool_one(self, name: str) -> None:
        self.spool_checked(self.cfg, locate(self.cfg, name), name)


def make_spool(sidecar: Path, owner: tuple[int, int]) -> Path:
    """The spool directory inside the sidecar, owned by the server's user."""
    spool = sidecar / "prefetch"
    if spool.exists():
        shutil.rmtree(spool)
    spool.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(spool, *owner)
    return spool
