"""The catalog on a local volume as the exporter sees it: read fresh at every scrape.

Why this reader looks at directories: it needs the repository's
:class:`~seawall.storage.base.LocalVolume` capability (stat, ``scandir`` of
series directories and inotify, all through ``local_volume()``; ADR 0012).
A repository without one (object storage) is read by
:mod:`seawall.exporter.catalog_listed` instead, from a periodic listing.

Why a cache keyed on ``(path, mtime_ns, size)``: the catalog is the truth and
must be re-read at each scrape (a backup finished a second ago must show),
but parsing 10,000 JSON manifests with pydantic takes about a second. A
``stat`` is a thousand times cheaper, and manifests are only ever replaced
by an atomic rename (new inode, new mtime), so an unchanged stat means an
unchanged manifest. Entries whose file vanished are dropped, so a pruned
backup or a removed series disappears from the metrics at the next scrape.

The walk knows the layout (``<engine>/<kind>/<series>/<id>/manifest.json``)
and never descends into the WAL archive (``postgresql/wal``, watched by
:mod:`seawall.exporter.wal_watch` instead). Drill records live under
``drills/<engine>/<series>/<id>/manifest.json`` (see docs/exporter.md).

Never raises for bad content: a corrupt, foreign or unreadable manifest is
counted in :attr:`CatalogSnapshot.errors` and skipped.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from seawall.catalog.models import MANIFEST_NAME
from seawall.catalog.naming import decode_segment, is_backup_id
from seawall.exporter.fsevents import EVENT_FILTER
from seawall.exporter.records import (
    DRILLS_DIR,
    ENGINES,
    MAX_MANIFEST_BYTES,
    WAL_KIND as _WAL_KIND,
    CatalogSnapshot,
    Record,
    SeriesGroup,
    SeriesKey,
    parse_record,
)
from seawall.storage.base import LocalVolume, Storage
from seawall.storage.factory import open_storage

log = logging.getLogger("seawall.exporter.catalog")

__all__ = ["CatalogCache", "CatalogSnapshot", "Record", "SeriesGroup", "SeriesKey"]


Listing = tuple[tuple[str, int], ...]
#: manifest path -> ((mtime_ns, size), its Record or why it is not usable)
Entries = dict[str, tuple[tuple[int, int], "Record | str"]]


@dataclass(frozen=True)
class _SeriesCache:
    """What the last scan saw in one series directory (never mutated: replaced)."""

    listing: Listing
    group: SeriesGroup | None
    errors: int
    entries: Entries


class CatalogCache:
    """Reads the catalog at each :meth:`scan`; re-parses only changed manifests.

    Three levels, cheapest first:

    1. per series directory, the list of ``(backup dir, mtime_ns)`` from one
       ``scandir``: unchanged means no backup was added, removed, or had a
       file renamed into it (the runner replaces manifests by an atomic
       rename, which bumps the backup directory's mtime), so the series'
       records are reused as they are;
    2. otherwise per manifest, ``(path, mtime_ns, size)``: only manifests
       whose stat changed are read and parsed again;
    3. every ``full_check_interval`` seconds every manifest is stat'ed
       regardless of level 1, which also catches a manifest edited in place
       (not the runner's way, but a human's).

    With ``watch=True`` (the server) a watchdog observer adds a level 0: a
    series with no file system event since the last scrape is not even
    listed, and the level-3 check runs in a background thread that marks
    the series it finds changed, so no scrape pays for it.

    ``enabled=False`` is the naive mode (``--no-cache``) used by the bench to
    show what the cache is worth: every manifest is parsed at every scrape.
    """

    def __init__(
        self,
        repository: Storage | Path,
        *,
        enabled: bool = True,
        full_check_interval: float = 300.0,
        watch: bool = False,
    ) -> None:
        self.storage = local_storage(repository)
        vol = self.storage.local_volume()
        assert vol is not None  # local_storage() refuses a backend without one
        self.volume: LocalVolume = vol
        self.root = vol.root
        self._root = str(self.root)
        self.enabled = enabled
        self.full_check_interval = full_check_interval
        self.watch = watch and enabled
        self._observer: Any = None
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._forced: set[str] = set()
        self._forced_now: set[str] = set()
        self._next_watch_attempt = float("-inf")
        self._stop = threading.Event()
        self._checker: threading.Thread | None = None
        self._series: dict[str, _SeriesCache] = {}
        self._last_full = float("-inf")
        self._skip_clean = False
        self._restart = False
        self._dirty_now: set[str] = set()
        self._generation = 0
        self.parsed = 0  # manifests parsed so far (tests check the cache works)

    def scan(self) -> CatalogSnapshot:
        snap = CatalogSnapshot()
        if not self.root.is_dir():
            snap.readable = False
            self._series = {}
            return snap
        now = time.monotonic()
        if self._restart:
            self._stop_observer()
            self._next_watch_attempt = float("-inf")
        if self.watch and self._observer is None and now >= self._next_watch_attempt:
            self._next_watch_attempt = now + self.full_check_interval
            self._start_observer()
        watching = self._observer is not None
        if watching:  # the background checker does the periodic full check
            full = self._last_full == float("-inf")
        else:
            full = not self.enabled or now - self._last_full >= self.full_check_interval
        if full:
            self._last_full = now
        with self._lock:
            self._dirty_now, self._dirty = self._dirty, set()
            self._forced_now, self._forced = self._forced, set()
        self._skip_clean = watching and not full
        seen_series: dict[str, _SeriesCache] = {}
        for engine in ENGINES:
            for kind in _dirs(str(self.volume.path(engine)), snap):
                if engine == "postgresql" and kind.name == _WAL_KIND:
                    continue
                for series in _dirs(kind.path, snap):
                    key = (engine, kind.name, decode_segment(series.name))
                    self._scan_series(series.path, key, snap.groups, snap, seen_series, full)
        for engine_dir in _dirs(str(self.volume.path(DRILLS_DIR)), snap):
            for series in _dirs(engine_dir.path, snap):
                key = (engine_dir.name, "drill", decode_segment(series.name))
                self._scan_series(series.path, key, snap.drills, snap, seen_series, full)
        self._series = seen_series if self.enabled else {}
        return snap

    def _scan_series(
        self,
        path: str,
        key: SeriesKey,
        into: dict[SeriesKey, SeriesGroup],
        snap: CatalogSnapshot,
        seen_series: dict[str, _SeriesCache],
        full: bool,
    ) -> None:
        cached = self._series.get(path)
        forced = full or path in self._forced_now
        if self._skip_clean and cached is not None and not forced and path not in self._dirty_now:
            current = cached  # no event under this series since the last scrape
        else:
            listing = _listing(path, snap)
            if listing is None:
                return
            if cached is not None and not forced and cached.listing == listing:
                current = cached
            else:
                current = self._read_series(path, key, listing, cached)
        seen_series[path] = current
        snap.errors += current.errors
        if current.group is not None:
            snap.manifests += len(current.group.records)
            into[key] = current.group

    def _read_series(
        self,
        path: str,
        key: SeriesKey,
        listing: Listing,
        cached: _SeriesCache | None,
    ) -> _SeriesCache:
        old: Entries = cached.entries if cached is not None else {}
        entries: Entries = {}
        records: list[Record] = []
        errors = 0
        for name, _ in listing:
            if not is_backup_id(name):
                continue
            mpath = os.path.join(path, name, MANIFEST_NAME)
            try:
                st = os.stat(mpath)
            except FileNotFoundError:
                continue  # no manifest: not a backup (yet, or half-deleted)
            except OSError as exc:
                errors += 1
                log.warning("cannot stat %s: %s", mpath, exc.strerror)
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MANIFEST_BYTES:
                # a FIFO or /dev/zero would block or flood the scrape
                errors += 1
                log.warning("%s: not a regular file of sane size; skipped", mpath)
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            hit = old.get(mpath) if self.enabled else None
            value = hit[1] if hit is not None and hit[0] == stamp else self._parse(mpath, key, name)
            entries[mpath] = (stamp, value)
            if isinstance(value, str):
                errors += 1
            else:
                records.append(value)
        group = None
        if records:
            records.sort(key=lambda r: (r.time, r.id), reverse=True)
            self._generation += 1
            group = SeriesGroup(key, records, self._generation)
        return _SeriesCache(listing, group, errors, entries if self.enabled else {})

    def check_all(self) -> int:
        """Stat every known manifest; force a re-read of series that changed.

        Runs in the background thread every ``full_check_interval`` seconds
        when watching (events can be lost, and an in-place edit of a manifest
        changes no directory). Returns how many series were marked.
        """
        marked = 0
        dummy = CatalogSnapshot()
        for path, cached in list(self._series.items()):
            changed = _listing(path, dummy) != cached.listing
            if not changed:
                for mpath, (stamp, _) in cached.entries.items():
                    try:
                        st = os.stat(mpath)
                    except OSError:
                        changed = True
                        break
                    if (st.st_mtime_ns, st.st_size) != stamp:
                        changed = True
                        break
            if changed:
                marked += 1
                with self._lock:
                    self._forced.add(path)
        return marked

    def _check_loop(self) -> None:
        while not self._stop.wait(self.full_check_interval):
            try:
                self.check_all()
            except Exception:  # the checker must never die
                log.warning("catalog check failed", exc_info=True)

    # --- file system events ---------------------------------------------------
    def start(self) -> None:
        """Start watching now (instead of at the first scan) if ``watch`` is on."""
        if not self.watch:
            return
        if self._observer is None:
            self._next_watch_attempt = time.monotonic() + self.full_check_interval
            self._start_observer()
        if self._checker is None:
            self._checker = threading.Thread(
                target=self._check_loop, name="catalog-check", daemon=True
            )
            self._checker.start()

    def _start_observer(self) -> None:
        """Watch the catalog so unchanged series are not even listed.

        Recursive watches cover ``qdrant/``, ``drills/`` and each
        ``postgresql/<kind>/`` except the WAL archive (its 100,000 files
        are the WAL watcher's business, and walking them would double the
        start-up cost); non-recursive watches on the root and on
        ``postgresql/`` notice a new engine or kind, which restarts the
        observer so the new directory is watched too.
        """
        if not self.root.is_dir():
            return
        observer = Observer()
        handler = _Events(self)
        tops: list[tuple[str, bool]] = [(self._root, False)]
        for top in (*ENGINES[1:], DRILLS_DIR):
            tops.append((str(self.volume.path(top)), True))
        pg = str(self.volume.path(ENGINES[0]))
        tops.append((pg, False))
        tops += [(e.path, True) for e in _iter_subdirs(pg) if e.name != _WAL_KIND]
        try:
            for path, recursive in tops:
                if os.path.isdir(path):
                    observer.schedule(handler, path, recursive=recursive, event_filter=EVENT_FILTER)
            observer.daemon = True
            observer.start()
        except OSError as exc:  # e.g. fs.inotify.max_user_watches too low
            log.warning(
                "cannot watch %s (%s); every scrape lists the catalog instead", self.root, exc
            )
            return
        self._observer = observer
        self._restart = False
        self._last_full = float("-inf")  # events before the watch began are unknown

    def touched(self, path: str, is_directory: bool = False) -> None:
        """An event at ``path``: mark its series to be listed at the next scrape."""
        rel = os.path.relpath(path, self._root)
        parts = rel.split(os.sep)
        if parts[0] == "..":
            return
        if is_directory and (
            len(parts) == 1
            or (len(parts) == 2 and parts[0] == ENGINES[0] and parts[1] != _WAL_KIND)
        ):
            self._restart = True  # a new (or removed) engine or kind directory
            return
        if len(parts) < 3 or (parts[0] == ENGINES[0] and parts[1] == _WAL_KIND):
            return  # series directories themselves are found by the walk at each scrape
        series = os.path.join(self._root, *parts[:3])
        with self._lock:
            if not is_directory and parts[-1] == MANIFEST_NAME:
                # written in place (closed after writing): the directory's
                # mtime did not change, so re-read the series' manifests
                self._forced.add(series)
            else:
                self._dirty.add(series)

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(5)

    def stop(self) -> None:
        self._stop.set()
        self._stop_observer()
        if self._checker is not None:
            self._checker.join(5)

    def _parse(self, mpath: str, key: SeriesKey, backup_id: str) -> Record | str:
        """Read one manifest: its Record, or why it is not a usable manifest."""
        self.parsed += 1
        where = os.path.relpath(mpath, self.root)
        try:
            with open(mpath, "rb") as fh:
                data = fh.read(MAX_MANIFEST_BYTES)
        except OSError as exc:
            msg = f"{where}: unreadable ({exc.strerror})"
            log.warning("%s", msg)
            return msg
        return parse_record(data, where, key, backup_id)


def local_storage(repository: Storage | Path) -> Storage:
    """The repository as a Storage that offers a local volume (this cache needs one).

    A path is opened through the one factory; object storage has its own
    reader (:mod:`seawall.exporter.catalog_listed`), so a backend without a
    local volume here is a programming error, not a configuration one.
    """
    storage = open_storage(repository) if isinstance(repository, Path) else repository
    if storage.local_volume() is None:
        raise ValueError(f"{storage.describe()} is no local volume: use ListedCatalog")
    return storage


class _Events(FileSystemEventHandler):
    def __init__(self, cache: CatalogCache) -> None:
        super().__init__()
        self.cache = cache

    def on_any_event(self, event: FileSystemEvent) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                text = path.decode() if isinstance(path, bytes) else path
                self.cache.touched(text, event.is_directory)


def _listing(path: str, snap: CatalogSnapshot) -> tuple[tuple[str, int], ...] | None:
    """``(name, mtime_ns)`` of the sub-directories of a series (one scandir).

    ``DirEntry.stat`` on a scandir opened by file descriptor is an
    ``fstatat`` relative to the directory: the cheapest stat there is.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        snap.errors += 1
        log.warning("cannot list %s: %s", path, exc.strerror)
        return None
    try:
        out = []
        with os.scandir(fd) as it:
            for e in it:
                if e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
                    continue
                try:
                    out.append((e.name, e.stat(follow_symlinks=False).st_mtime_ns))
                except FileNotFoundError:
                    continue
        return tuple(out)
    except OSError as exc:
        snap.errors += 1
        log.warning("cannot list %s: %s", path, exc.strerror)
        return None
    finally:
        os.close(fd)


def _iter_subdirs(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return [e for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _dirs(path: str, snap: CatalogSnapshot) -> list[os.DirEntry[str]]:
    """Sub-directories (no hidden ones); an unreadable directory is an error."""
    try:
        with os.scandir(path) as it:
            return [e for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []
    except OSError as exc:
        snap.errors += 1
        log.warning("cannot list %s: %s", path, exc.strerror)
        return []
