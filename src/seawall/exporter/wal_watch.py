"""The WAL archive on a local volume as a live, incrementally maintained set of segments.

Needs the repository's :class:`~seawall.storage.base.LocalVolume` (inotify
and ``scandir`` through ``local_volume()``, ADR 0012); on object storage
the same state (:mod:`seawall.exporter.wal_state`) is rebuilt from a
periodic listing instead. Why not list the archive at every scrape: 100,000 segments take a few
hundred milliseconds to walk, and Prometheus scrapes every 15-60 s. A
watchdog observer (inotify on Linux) tells us about each file that appears
(written to a temporary name, then renamed into place by ``wal-push``) or
disappears (retention), and we keep per cluster and timeline the set of
segment numbers (:class:`~seawall.exporter.wal_state.WalState`), updated in
O(1) per event.

Events can be lost (inotify queue overflow, a directory moved in whole, a
volume remounted), so a periodic full rescan rebuilds the state from
scratch; ``--rescan-interval`` sets its period. A rescan is also the
fallback when the archive directory does not exist yet: we cannot watch a
missing directory, so the rescan starts the observer once it appears.

Read-only: the observer only reads directory entries and ``stat`` data.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from seawall.catalog.naming import decode_segment
from seawall.exporter.catalog_cache import local_storage
from seawall.exporter.fsevents import EVENT_FILTER
from seawall.exporter.wal_state import (
    MAX_INFO_BYTES,
    BaseRef,
    WalState,
    WalSummary,
    _Cluster,
    _Timeline,
    segment_name_of,
    segment_size_of,
)
from seawall.storage.base import Storage
from seawall.walcore.layout import ARCHIVE_INFO, WAL_ROOT
from seawall.walcore.names import parse_wal_name

__all__ = ["BaseRef", "WalSummary", "WalWatcher", "segment_name_of"]

log = logging.getLogger("seawall.exporter.wal")


def _read_segment_size(cluster_dir: Path) -> int:
    path = cluster_dir / ARCHIVE_INFO
    try:
        # a regular, small file only: never block on a FIFO or read /dev/zero
        if not path.is_file() or path.stat().st_size > MAX_INFO_BYTES:
            return segment_size_of(None)
        return segment_size_of(path.read_bytes())
    except OSError:
        return segment_size_of(None)


class WalWatcher(WalState):
    """Per-cluster WAL segment sets, kept current by watchdog and rescans.

    ``watch=False`` is the naive mode (``--no-cache``): every
    :meth:`summaries` call rescans the archive, which is what the cache is
    measured against.
    """

    def __init__(
        self, repository: Storage | Path, *, rescan_interval: float = 300.0, watch: bool = True
    ):
        super().__init__()
        vol = local_storage(repository).local_volume()
        assert vol is not None  # local_storage() refuses a backend without one
        self.root = vol.path(WAL_ROOT)
        self.rescan_interval = rescan_interval
        self.watch = watch
        self._observer: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._need_rescan = True
        self._rescan_lock = threading.Lock()
        self._journal: list[tuple[bool, str]] | None = None

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Initial scan, observer (if the archive exists) and the rescan thread."""
        if not self.watch:
            return
        self._ensure_observer()
        self.rescan()
        self._thread = threading.Thread(target=self._loop, name="wal-rescan", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        observer = self._observer
        self._observer = None
        if observer is not None:
            try:
                observer.stop()
                observer.join(5)
            except Exception:  # pragma: no cover - shutdown best effort
                log.debug("observer stop failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.rescan_interval):
            try:
                self._ensure_observer()
                self.rescan()
            except Exception:  # a rescan must never kill the thread
                log.warning("WAL archive rescan failed", exc_info=True)

    def _ensure_observer(self) -> None:
        if self._observer is not None or not self.root.is_dir():
            return
        observer = Observer()
        observer.schedule(_Handler(self), str(self.root), recursive=True, event_filter=EVENT_FILTER)
        observer.daemon = True
        try:
            observer.start()
        except OSError as exc:  # inotify limits: fall back to rescans only
            log.warning("cannot watch %s (%s); relying on periodic rescans", self.root, exc)
            return
        self._observer = observer
        self._need_rescan = True  # files may have appeared before the watch began

    # --- full scan -------------------------------------------------------------
    def rescan(self) -> None:
        """Rebuild every cluster's state from the directory tree."""
        with self._rescan_lock:
            self._rescan()

    def _rescan(self) -> None:
        # events that arrive while we walk are journaled and replayed on the
        # new state: a segment archived mid-walk must not look like a gap
        with self._lock:
            self._journal = []
        fresh: dict[str, _Cluster] = {}
        for entry in _scandir(str(self.root)):
            if not entry.is_dir(follow_symlinks=False):
                continue
            state = _Cluster(segment_size=_read_segment_size(Path(entry.path)))
            fresh[decode_segment(entry.name)] = state
            for sub in _scandir(entry.path):
                if not sub.is_dir(follow_symlinks=False):
                    continue
                for f in _iter_dir(sub.path):
                    self._add_to(state, f.name, f.path, f)
        with self._lock:
            self._clusters = fresh
            journal, self._journal = self._journal or [], None
            for added, path in journal:
                if added:
                    self._apply_add(path)
                else:
                    self._apply_remove(path)
            self._version += 1
            self._need_rescan = False
            self.rescans += 1

    @staticmethod
    def _add_to(
        state: _Cluster, name: str, path: str, entry: os.DirEntry[str] | None = None
    ) -> bool:
        seg = segment_name_of(name)
        if seg is None:
            return False
        try:
            parsed = parse_wal_name(seg, state.segment_size)
            st = entry.stat(follow_symlinks=False) if entry is not None else os.stat(path)
        except (ValueError, OSError):
            return False
        assert parsed.segno is not None
        tl = state.timelines.setdefault(parsed.timeline, _Timeline())
        return tl.add(parsed.segno, st.st_mtime, st.st_size)

    # --- incremental events (called from the observer thread) --------------
    def _split(self, path: str) -> tuple[str, str, str] | None:
        """(cluster, cluster directory name, file name) of a segment path."""
        rel = os.path.relpath(path, self.root)
        parts = rel.split(os.sep)
        if len(parts) != 3 or parts[0].startswith("."):
            return None
        return decode_segment(parts[0]), parts[0], parts[2]

    def file_added(self, path: str) -> None:
        if self._split(path) is None:
            if os.path.basename(path) == ARCHIVE_INFO:
                self.request_rescan()
            return
        with self._lock:
            self._apply_add(path)
            if self._journal is not None:
                self._journal.append((True, path))

    def file_removed(self, path: str) -> None:
        if self._split(path) is None:
            return
        with self._lock:
            self._apply_remove(path)
            if self._journal is not None:
                self._journal.append((False, path))

    def _apply_add(self, path: str) -> None:
        where = self._split(path)
        if where is None:
            return
        cluster, directory, name = where
        state = self._clusters.get(cluster)
        if state is None:
            if segment_name_of(name) is None:
                return
            size = _read_segment_size(self.root / directory)
            state = self._clusters[cluster] = _Cluster(segment_size=size)
        if self._add_to(state, name, path):
            self._version += 1

    def _apply_remove(self, path: str) -> None:
        where = self._split(path)
        if where is None:
            return
        cluster, _, name = where
        seg = segment_name_of(name)
        state = self._clusters.get(cluster)
        if seg is None or state is None:
            return
        try:
            parsed = parse_wal_name(seg, state.segment_size)
        except ValueError:
            return
        tl = state.timelines.get(parsed.timeline)
        if tl is not None and parsed.segno is not None and tl.remove(parsed.segno):
            self._version += 1
            if not tl.segs:
                del state.timelines[parsed.timeline]

    def request_rescan(self) -> None:
        """A directory-level event we cannot apply file by file."""
        with self._lock:
            self._need_rescan = True

    # --- reading -------------------------------------------------------------------
    def _fresh(self) -> None:
        if not self.watch:
            self.rescan()
            return
        self._ensure_observer()
        if self._need_rescan:
            self.rescan()


class _Handler(FileSystemEventHandler):
    """Turns watchdog events into :class:`WalWatcher` updates."""

    def __init__(self, watcher: WalWatcher) -> None:
        super().__init__()
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch(event)
        except Exception:  # never let one odd event kill the observer thread
            log.debug("WAL event %r failed", event, exc_info=True)

    def _dispatch(self, event: FileSystemEvent) -> None:
        w = self.watcher
        if isinstance(event, FileCreatedEvent | FileClosedEvent):
            w.file_added(_str(event.src_path))
        elif isinstance(event, FileMovedEvent):
            w.file_removed(_str(event.src_path))
            w.file_added(_str(event.dest_path))
        elif isinstance(event, FileDeletedEvent):
            w.file_removed(_str(event.src_path))
        elif isinstance(event, DirMovedEvent | DirDeletedEvent):
            w.request_rescan()


def _str(path: str | bytes) -> str:
    return path.decode(errors="surrogateescape") if isinstance(path, bytes) else path


def _iter_dir(path: str) -> Iterator[os.DirEntry[str]]:
    """Entries one by one (a directory may hold 100,000 segments)."""
    try:
        with os.scandir(path) as it:
            yield from it
    except OSError:
        return


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []
