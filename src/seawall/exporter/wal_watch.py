"""The WAL archive as a live, incrementally maintained set of segments.

Why not list the archive at every scrape: 100,000 segments take a few
hundred milliseconds to walk, and Prometheus scrapes every 15-60 s. A
watchdog observer (inotify on Linux) tells us about each file that appears
(written to a temporary name, then renamed into place by ``wal-push``) or
disappears (retention), and we keep per cluster and timeline the set of
segment numbers plus a count of contiguous *runs*, updated in O(1) per
event: adding segment ``s`` merges with its neighbours ``s-1``/``s+1``.
``gaps = runs - 1`` (holes between the oldest and newest segment).

Events can be lost (inotify queue overflow, a directory moved in whole, a
volume remounted), so a periodic full rescan rebuilds the state from
scratch; ``--rescan-interval`` sets its period. A rescan is also the
fallback when the archive directory does not exist yet: we cannot watch a
missing directory, so the rescan starts the observer once it appears.

Read-only: the observer only reads directory entries and ``stat`` data.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
from seawall.exporter.fsevents import EVENT_FILTER
from seawall.storage.base import is_partial_name
from seawall.walcore.archived import parse_wal_key
from seawall.walcore.layout import ARCHIVE_INFO, WAL_ROOT
from seawall.walcore.names import DEFAULT_WAL_SEGMENT_SIZE, parse_wal_name

log = logging.getLogger("seawall.exporter.wal")

# Fallback for archives written before the ``<name>-<sha>`` layout: a bare
# segment name followed by a suffix (``000000010000000000000003.zst.age``).
_BARE_SEGMENT = re.compile(r"^([0-9A-F]{24})(?:\.(?:zst|gz|age|lz4|br))*$")


def segment_name_of(file_name: str) -> str | None:
    """The 24-hex segment a stored file holds, or None (history, temp, other)."""
    if is_partial_name(file_name):
        return None
    obj = parse_wal_key(file_name)
    if obj is not None:
        return obj.name if obj.is_segment else None
    m = _BARE_SEGMENT.match(file_name)
    return m.group(1) if m else None


_SIZE_BITS = 40  # stored size < 1 TiB per segment file


def _pack(mtime: float, size: int) -> int:
    """(mtime in whole seconds, size) as one int: half the memory of a tuple."""
    return (int(mtime) << _SIZE_BITS) | min(size, (1 << _SIZE_BITS) - 1)


def _mtime(packed: int) -> float:
    return float(packed >> _SIZE_BITS)


def _size(packed: int) -> int:
    return packed & ((1 << _SIZE_BITS) - 1)


@dataclass
class _Timeline:
    """Segments of one timeline: segno -> packed (mtime, size), and the run count."""

    segs: dict[int, int] = field(default_factory=dict)
    runs: int = 0
    bytes: int = 0

    def add(self, segno: int, mtime: float, size: int) -> bool:
        packed = _pack(mtime, size)
        old = self.segs.get(segno)
        if old is not None:
            self.bytes += size - _size(old)
            self.segs[segno] = packed
            return False
        self.runs += 1 - ((segno - 1) in self.segs) - ((segno + 1) in self.segs)
        self.segs[segno] = packed
        self.bytes += size
        return True

    def remove(self, segno: int) -> bool:
        old = self.segs.pop(segno, None)
        if old is None:
            return False
        self.runs -= 1 - ((segno - 1) in self.segs) - ((segno + 1) in self.segs)
        self.bytes -= _size(old)
        return True

    def mtime(self, segno: int) -> float:
        return _mtime(self.segs[segno])

    def run_end(self, segno: int) -> int | None:
        """Last segment of the contiguous run starting at ``segno``."""
        if segno not in self.segs:
            return None
        end = segno
        while end + 1 in self.segs:
            end += 1
        return end


@dataclass
class _Cluster:
    segment_size: int = DEFAULT_WAL_SEGMENT_SIZE
    timelines: dict[int, _Timeline] = field(default_factory=dict)


@dataclass(frozen=True)
class WalSummary:
    """What the collector exports for one cluster's archive."""

    cluster: str
    segments: int
    gaps: int
    missing_segments: int
    bytes: int
    newest_mtime: float | None
    timelines: int


@dataclass(frozen=True)
class BaseRef:
    """A successful base backup as the PITR window computation needs it."""

    end_time: float
    timeline: int
    start_wal: str
    stop_wal: str


def _read_segment_size(cluster_dir: Path) -> int:
    path = cluster_dir / ARCHIVE_INFO
    try:
        # a regular, small file only: never block on a FIFO or read /dev/zero
        if not path.is_file() or path.stat().st_size > 1024 * 1024:
            return DEFAULT_WAL_SEGMENT_SIZE
        info: Any = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return DEFAULT_WAL_SEGMENT_SIZE
    if isinstance(info, dict):
        for key in ("wal_segment_size", "segment_size"):
            value = info.get(key)
            if isinstance(value, int) and value > 0 and value & (value - 1) == 0:
                return value
    return DEFAULT_WAL_SEGMENT_SIZE


class WalWatcher:
    """Per-cluster WAL segment sets, kept current by watchdog and rescans.

    ``watch=False`` is the naive mode (``--no-cache``): every
    :meth:`summaries` call rescans the archive, which is what the cache is
    measured against.
    """

    def __init__(self, backup_dir: Path, *, rescan_interval: float = 300.0, watch: bool = True):
        self.root = Path(backup_dir) / WAL_ROOT
        self.rescan_interval = rescan_interval
        self.watch = watch
        self._lock = threading.RLock()
        self._clusters: dict[str, _Cluster] = {}
        self._version = 0
        self._observer: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._need_rescan = True
        self._pitr_memo: dict[str, tuple[tuple[Any, ...], tuple[float, float] | None]] = {}
        self._summary_memo: tuple[int, list[WalSummary]] | None = None
        self._rescan_lock = threading.Lock()
        self._journal: list[tuple[bool, str]] | None = None
        self.rescans = 0

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

    def summaries(self) -> list[WalSummary]:
        """One summary per cluster (clusters with no segments included)."""
        self._fresh()
        out: list[WalSummary] = []
        with self._lock:
            if self._summary_memo is not None and self._summary_memo[0] == self._version:
                return self._summary_memo[1]
            for cluster, state in sorted(self._clusters.items()):
                count = gaps = missing = size = 0
                newest: float | None = None
                newest_key: tuple[int, int] | None = None
                for timeline, tl in state.timelines.items():
                    if not tl.segs:
                        continue
                    count += len(tl.segs)
                    gaps += max(tl.runs - 1, 0)
                    lo, hi = min(tl.segs), max(tl.segs)
                    missing += (hi - lo + 1) - len(tl.segs)
                    size += tl.bytes
                    if newest_key is None or (timeline, hi) > newest_key:
                        newest_key = (timeline, hi)
                    mtime = tl.mtime(hi)
                    newest = mtime if newest is None else max(newest, mtime)
                out.append(
                    WalSummary(
                        cluster=cluster,
                        segments=count,
                        gaps=gaps,
                        missing_segments=missing,
                        bytes=size,
                        newest_mtime=newest,
                        timelines=len(state.timelines),
                    )
                )
            self._summary_memo = (self._version, out)
        return out

    def pitr_window(self, cluster: str, bases: Iterable[BaseRef]) -> tuple[float, float] | None:
        """(earliest, latest) restorable point of a cluster, or None.

        latest: archive time (mtime) of the last segment of the contiguous
        run that starts at the newest base backup whose own WAL (start to
        stop segment) is complete. earliest: end time of the oldest base
        backup on that timeline whose start segment lies in the same
        contiguous run, i.e. from which WAL replays without a gap to latest.
        Timelines are treated separately (a window across a timeline switch
        is reported from the newest timeline holding a usable base backup).
        """
        refs = tuple(sorted(bases, key=lambda b: b.end_time))
        with self._lock:
            memo_key = (self._version, refs)
            cached = self._pitr_memo.get(cluster)
            if cached is not None and cached[0] == memo_key:
                return cached[1]
            result = self._compute_window(cluster, refs)
            self._pitr_memo[cluster] = (memo_key, result)
            return result

    def _compute_window(
        self, cluster: str, refs: tuple[BaseRef, ...]
    ) -> tuple[float, float] | None:
        state = self._clusters.get(cluster)
        if state is None:
            return None
        size = state.segment_size
        for newest in reversed(refs):
            tl = state.timelines.get(newest.timeline)
            if tl is None:
                continue
            try:
                start = parse_wal_name(newest.start_wal, size).segno
                stop = parse_wal_name(newest.stop_wal, size).segno
            except ValueError:
                continue
            if start is None or stop is None:
                continue
            end = tl.run_end(start)
            if end is None or end < stop:
                continue  # this base backup's own WAL is incomplete
            latest = tl.mtime(end)
            earliest = newest.end_time
            for older in refs:
                if older.timeline != newest.timeline or older.end_time >= earliest:
                    continue
                try:
                    o_start = parse_wal_name(older.start_wal, size).segno
                except ValueError:
                    continue
                if o_start is not None and o_start <= start and tl.run_end(o_start) == end:
                    earliest = older.end_time
                    break
            return earliest, max(latest, newest.end_time)
        return None


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
