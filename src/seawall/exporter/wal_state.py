"""Per-cluster WAL segment sets and what the metrics derive from them.

Why apart from the watcher: two things keep this state current — the
inotify watcher on a local volume (:mod:`seawall.exporter.wal_watch`, one
event at a time) and, on object storage, a periodic listing
(:meth:`WalState.load`). Both feed the same sets, so gaps, bytes and the
PITR window are computed one way.

Per cluster and timeline: the set of segment numbers plus a count of
contiguous *runs*, updated in O(1) per added or removed segment (adding
segment ``s`` merges with its neighbours ``s-1``/``s+1``);
``gaps = runs - 1`` (holes between the oldest and newest segment).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from seawall.catalog.naming import decode_segment
from seawall.storage.base import ObjectInfo, is_partial_name
from seawall.walcore.archived import parse_wal_key
from seawall.walcore.layout import ARCHIVE_INFO, WAL_ROOT
from seawall.walcore.names import DEFAULT_WAL_SEGMENT_SIZE, parse_wal_name

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


MAX_INFO_BYTES = 1024 * 1024  # archive.json is a few hundred bytes


def segment_size_of(data: bytes | None) -> int:
    """The segment size an ``archive.json`` records (the default when unreadable)."""
    if data is None:
        return DEFAULT_WAL_SEGMENT_SIZE
    try:
        info: Any = json.loads(data)
    except ValueError:
        return DEFAULT_WAL_SEGMENT_SIZE
    if isinstance(info, dict):
        for key in ("wal_segment_size", "segment_size"):
            value = info.get(key)
            if isinstance(value, int) and value > 0 and value & (value - 1) == 0:
                return value
    return DEFAULT_WAL_SEGMENT_SIZE


def add_segment(state: _Cluster, name: str, mtime: float, size: int) -> bool:
    """Add a stored file to a cluster's sets if it holds a segment; whether it was new."""
    seg = segment_name_of(name)
    if seg is None:
        return False
    try:
        parsed = parse_wal_name(seg, state.segment_size)
    except ValueError:
        return False
    assert parsed.segno is not None
    tl = state.timelines.setdefault(parsed.timeline, _Timeline())
    return tl.add(parsed.segno, mtime, size)


class WalState:
    """Segment sets of every cluster, with the summaries and PITR windows read from them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._clusters: dict[str, _Cluster] = {}
        self._version = 0
        self._pitr_memo: dict[str, tuple[tuple[Any, ...], tuple[float, float] | None]] = {}
        self._summary_memo: tuple[int, list[WalSummary]] | None = None
        self.rescans = 0

    def _fresh(self) -> None:
        """Bring the state up to date before reading (the watcher rescans here)."""

    def load(self, objects: Iterable[ObjectInfo], read_info: Callable[[str], bytes | None]) -> None:
        """Rebuild the state from a listing of the repository (object storage).

        ``objects`` may hold the whole repository: only keys under the WAL
        root count. ``read_info`` reads a cluster's ``archive.json`` (its
        segment size) by key, or returns None.
        """
        fresh: dict[str, _Cluster] = {}
        root = f"{WAL_ROOT}/"
        for info in objects:
            if not info.key.startswith(root):
                continue
            parts = info.key[len(root) :].split("/")
            if len(parts) != 3 or parts[0].startswith("."):
                continue
            cluster = decode_segment(parts[0])
            state = fresh.get(cluster)
            if state is None:
                size = segment_size_of(read_info(f"{root}{parts[0]}/{ARCHIVE_INFO}"))
                state = fresh[cluster] = _Cluster(segment_size=size)
            add_segment(state, parts[2], info.mtime, info.size)
        with self._lock:
            self._clusters = fresh
            self._version += 1
            self.rescans += 1

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
