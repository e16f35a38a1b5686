"""The WAL archive as a whole: listing, continuity, recoverable window.

Pure functions over a listing (``analyse``) plus one I/O function that
builds the listing (``list_archive``), so gap logic is tested without a
cluster.

Times: the archive does not know the commit times inside a segment without
decoding WAL records. The push time of a segment (its file's mtime) is an
upper bound for every commit in it, and therefore the latest point in time
that a contiguous run of segments can reach. The earliest point is the end
of the oldest usable base backup.

Timelines: with the history files readable (they are decrypted when an
identity is configured), a timeline switch is taken at the exact segment the
history records; without them, a timeline ``T > 1`` is assumed to start at its
lowest archived segment (what a promotion produces).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from seawall.catalog.wal_layout import wal_prefix
from seawall.storage.base import Storage
from seawall.walcore.archived import parse_wal_key
from seawall.walcore.lsn import format_lsn
from seawall.walcore.names import DEFAULT_WAL_SEGMENT_SIZE, parse_wal_name, segment_name

if TYPE_CHECKING:
    from seawall.catalog.models import Manifest


@dataclass(frozen=True)
class ArchivedFile:
    name: str
    key: str
    kind: str  # segment | partial | backup | history
    timeline: int
    segno: int | None
    stored_size: int
    mtime: float


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a ``.history`` file: ``parent`` ended at ``switch_lsn``."""

    parent: int
    switch_lsn: int


@dataclass
class ArchiveListing:
    files: list[ArchivedFile] = field(default_factory=list)
    segment_size: int = DEFAULT_WAL_SEGMENT_SIZE
    #: parsed history files (timeline -> entries), when they could be read
    histories: dict[int, list[HistoryEntry]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: backup history file name -> its STOP TIME (next whole second), when read
    backup_stops: dict[str, datetime] = field(default_factory=dict)

    def segments(self) -> dict[int, dict[int, ArchivedFile]]:
        """timeline -> segno -> file (complete segments only)."""
        out: dict[int, dict[int, ArchivedFile]] = {}
        for f in self.files:
            if f.kind == "segment" and f.segno is not None:
                out.setdefault(f.timeline, {})[f.segno] = f
        return out

    def timelines(self) -> list[int]:
        tls = {f.timeline for f in self.files}
        return sorted(tls)


@dataclass(frozen=True)
class Gap:
    timeline: int
    first_missing: str
    last_missing: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "first_missing": self.first_missing,
            "last_missing": self.last_missing,
            "count": self.count,
        }


@dataclass(frozen=True)
class Duplicate:
    """A WAL name stored more than once: ``wal-fetch`` refuses it, so recovery stops there.

    Different content under one name is two histories (two clusters sharing
    ``PG_CLUSTER_NAME``, a standby that diverged, a push race before ADR
    0008); the same content twice (e.g. once per compression setting) is
    harmless in itself but refused alike, since fetch cannot tell.
    """

    name: str
    keys: tuple[str, ...]
    different_content: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "keys": list(self.keys),
            "different_content": self.different_content,
        }


@dataclass(frozen=True)
class Reach:
    """How far WAL replay from a start segment can go without a gap."""

    start: str
    last_segment: str | None  # last contiguous segment (None: not even the start)
    end_lsn: int | None  # end of that segment
    end_time: datetime | None  # its push time
    timeline: int
    missing: str | None  # the first segment needed but absent (the gap), if any


def parse_history(text: str) -> list[HistoryEntry]:
    """Parse a timeline history file (``parentTLI<TAB>switchpoint<TAB>reason``)."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        try:
            from seawall.walcore.lsn import parse_lsn

            entries.append(HistoryEntry(int(parts[0]), parse_lsn(parts[1])))
        except ValueError:
            continue
    return entries


def list_archive(
    storage: Storage, cluster: str, segment_size: int = DEFAULT_WAL_SEGMENT_SIZE
) -> ArchiveListing:
    """Every file of a cluster's archive (temporaries and unknown names skipped)."""
    listing = ArchiveListing(segment_size=segment_size)
    for info in storage.list(wal_prefix(cluster)):
        base = info.key.rsplit("/", 1)[-1]
        if base == "archive.json":
            continue
        obj = parse_wal_key(info.key)
        if obj is None:
            listing.errors.append(f"{info.key}: not an archive file name, ignored")
            continue
        try:
            wal = parse_wal_name(obj.name, segment_size)
        except ValueError as exc:
            listing.errors.append(f"{info.key}: {exc}")
            continue
        listing.files.append(
            ArchivedFile(
                obj.name, info.key, wal.kind, wal.timeline, wal.segno, info.size, info.mtime
            )
        )
    listing.files.sort(key=lambda f: (f.timeline, f.segno or -1, f.name))
    return listing


class _ListSink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def load_histories(listing: ArchiveListing, storage: Storage, keys: Any) -> None:
    """Decode the history files into ``listing.histories`` (best effort)."""
    from seawall.errors import SeawallError
    from seawall.pipeline.decode import decode_to

    for f in listing.files:
        if f.kind == "backup":
            _load_backup_stop(listing, storage, keys, f)
            continue
        if f.kind != "history":
            continue
        sink = _ListSink()
        obj = parse_wal_key(f.key)
        try:
            decode_to(storage, f.key, sink, keys, compression=obj.compression if obj else None)
        except SeawallError as exc:
            listing.errors.append(f"{f.name}: cannot read ({exc}); timeline switch points guessed")
            continue
        listing.histories[f.timeline] = parse_history(
            b"".join(sink.chunks).decode(errors="replace")
        )


def _load_backup_stop(
    listing: ArchiveListing, storage: Storage, keys: Any, f: ArchivedFile
) -> None:
    """Read a backup history file's STOP TIME (best effort: the manifest's time otherwise)."""
    from seawall.errors import SeawallError
    from seawall.pipeline.decode import decode_to

    sink = _ListSink()
    obj = parse_wal_key(f.key)
    try:
        decode_to(storage, f.key, sink, keys, compression=obj.compression if obj else None)
    except SeawallError:
        return
    stop = parse_backup_stop_time(b"".join(sink.chunks).decode(errors="replace"))
    if stop is not None:
        listing.backup_stops[f.name] = stop


def parse_backup_stop_time(text: str) -> datetime | None:
    """``STOP TIME: 2026-12-06 09:48:59 UTC`` of a backup history file, rounded up.

    PostgreSQL writes it in ``log_timezone`` to the second; the next whole
    second is never before the backup's real end.
    """
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    for line in text.splitlines():
        if not line.startswith("STOP TIME:"):
            continue
        parts = line.split(":", 1)[1].split()
        if len(parts) != 3:
            return None
        try:
            naive = datetime.fromisoformat(f"{parts[0]}T{parts[1]}")
            zone = ZoneInfo(parts[2])
        except (ValueError, KeyError, OSError):
            return None
        return naive.replace(tzinfo=zone).astimezone(UTC) + timedelta(seconds=1)
    return None


def find_gaps(listing: ArchiveListing) -> list[Gap]:
    """Missing segments between the lowest and highest segment of each timeline."""
    gaps: list[Gap] = []
    for tl, segs in sorted(listing.segments().items()):
        numbers = sorted(segs)
        for a, b in itertools.pairwise(numbers):
            if b - a > 1:
                gaps.append(
                    Gap(
                        tl,
                        segment_name(tl, a + 1, listing.segment_size),
                        segment_name(tl, b - 1, listing.segment_size),
                        b - a - 1,
                    )
                )
    return gaps


def find_duplicates(listing: ArchiveListing) -> list[Duplicate]:
    """WAL names with more than one archived file (any kind: segment, history, ...)."""
    by_name: dict[str, list[str]] = {}
    for f in listing.files:
        by_name.setdefault(f.name, []).append(f.key)
    out = []
    for name, keys in sorted(by_name.items()):
        if len(keys) < 2:
            continue
        shas = {obj.sha256_prefix for obj in map(parse_wal_key, keys) if obj is not None}
        out.append(Duplicate(name, tuple(sorted(keys)), len(shas) > 1))
    return out


def _switch_segno(listing: ArchiveListing, tl: int, parent: int) -> int | None:
    """Segment number at which ``tl`` takes over from ``parent``."""
    entries = listing.histories.get(tl)
    if entries:
        for e in entries:
            if e.parent == parent:
                return e.switch_lsn // listing.segment_size
    segs = listing.segments().get(tl)
    return min(segs) if segs else None


def timeline_path(
    listing: ArchiveListing, start_tl: int, target_tl: int | None = None
) -> list[int]:
    """Timelines replay goes through from ``start_tl`` to the target (latest by default).

    With history files, the target's history lists its ancestors; without,
    every archived timeline above ``start_tl`` is assumed to descend from it.
    """
    tls = [t for t in listing.timelines() if t >= start_tl]
    if not tls:
        return [start_tl]
    target = target_tl if target_tl is not None else max(tls)
    hist = listing.histories.get(target)
    if hist:
        ancestors = {e.parent for e in hist}
        return sorted(t for t in set(tls) | {target} if t == target or t in ancestors)
    return sorted(t for t in tls if t <= target)


def reach(
    listing: ArchiveListing,
    start_wal: str,
    target_tl: int | None = None,
) -> Reach:
    """Follow contiguous segments from ``start_wal`` along the timeline path."""
    size = listing.segment_size
    first = parse_wal_name(start_wal, size)
    assert first.segno is not None
    segs = listing.segments()
    path = timeline_path(listing, first.timeline, target_tl)
    # switch points: the segment at which each later timeline takes over
    switches: list[tuple[int, int]] = []
    for prev, nxt in itertools.pairwise(path):
        at = _switch_segno(listing, nxt, prev)
        if at is not None:
            switches.append((at, nxt))
    tl = first.timeline
    segno = first.segno
    last: ArchivedFile | None = None
    missing: str | None = None
    while True:
        for at, nxt in switches:
            if segno >= at and nxt > tl:
                tl = nxt
        found = segs.get(tl, {}).get(segno)
        if found is None:
            later = (n for t, ns in segs.items() if t in path and t >= tl for n in ns)
            if any(n > segno for n in later):
                missing = segment_name(tl, segno, size)
            break
        last = found
        segno += 1
    return Reach(
        start=start_wal,
        last_segment=last.name if last else None,
        end_lsn=((last.segno or 0) + 1) * size if last else None,
        end_time=datetime.fromtimestamp(last.mtime, UTC) if last else None,
        timeline=last.timeline if last else first.timeline,
        missing=missing,
    )


def has_history(listing: ArchiveListing, tl: int) -> bool:
    """Is ``tl``'s history file in the archive (read, or present but unreadable)?"""
    return tl in listing.histories or any(
        f.kind == "history" and f.timeline == tl for f in listing.files
    )


def missing_histories(listing: ArchiveListing, first_tl: int, last_tl: int) -> list[str]:
    """History files PostgreSQL needs to go from ``first_tl`` to ``last_tl`` but absent.

    With ``recovery_target_timeline = 'latest'`` PostgreSQL finds the newest
    timeline by probing ``first_tl + 1``, ``first_tl + 2``, ... history files
    and stops at the first one missing: without ``00000002.history`` it stays
    on timeline 1, however much WAL timeline 2 has, and recovery silently ends
    on the branch the promotion abandoned. A restored server runs with
    archiving off, so the history of the timeline it creates is never
    archived by PostgreSQL itself (the runbook's manual push).
    """
    return [
        f"{tl:08X}.history"
        for tl in range(first_tl + 1, last_tl + 1)
        if not has_history(listing, tl)
    ]


def archive_missing_histories(listing: ArchiveListing) -> list[str]:
    """History files missing between the archive's lowest and highest timeline."""
    tls = sorted({f.timeline for f in listing.files if f.kind in ("segment", "partial", "backup")})
    return missing_histories(listing, tls[0], tls[-1]) if tls else []


def newest_segment(listing: ArchiveListing) -> ArchivedFile | None:
    segs = [f for f in listing.files if f.kind in ("segment", "partial")]
    return max(segs, key=lambda f: f.mtime) if segs else None


def base_end_time(m: Manifest, listing: ArchiveListing | None = None) -> datetime:
    """When a base backup ended: the earliest point in time it can be restored to.

    The STOP TIME of its backup history file in the archive (``pg_backup_stop``)
    when it could be read, else the manifest's finish time. The manifest is
    finished only after pg_basebackup, which waits until the backup's WAL is
    archived: with a lagging archive_command that is minutes after the real
    end, and targets in between (restorable from this backup) were refused.
    """
    pg = m.postgres
    if listing is None or pg is None or not (pg.start_lsn and pg.timeline):
        return m.time
    from seawall.walcore.lsn import parse_lsn

    try:
        start = parse_lsn(pg.start_lsn)
    except ValueError:
        return m.time
    size = listing.segment_size
    name = f"{segment_name(pg.timeline, start // size, size)}.{start % size:08X}.backup"
    stop = listing.backup_stops.get(name)
    return min(stop, m.time) if stop is not None else m.time


@dataclass
class BaseRef:
    """What the window needs from a base backup manifest."""

    id: str
    timeline: int
    start_wal: str
    stop_wal: str
    stop_lsn: int
    finished_at: datetime


@dataclass
class WindowReport:
    cluster: str
    timelines: list[int]
    segments: int
    gaps: list[Gap]
    base_backups: list[dict[str, Any]]
    earliest: datetime | None
    latest: datetime | None
    latest_lsn: str | None
    newest_segment: str | None
    newest_segment_age_seconds: float | None
    errors: list[str]
    duplicates: list[Duplicate] = field(default_factory=list)
    #: history files of later timelines that are not archived (recovery cannot follow them)
    missing_histories: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.gaps
            and not self.duplicates
            and not self.missing_histories
            and not any(b.get("missing") for b in self.base_backups)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "ok": self.ok,
            "timelines": self.timelines,
            "segments": self.segments,
            "gaps": [g.to_dict() for g in self.gaps],
            "duplicates": [d.to_dict() for d in self.duplicates],
            "missing_histories": self.missing_histories,
            "base_backups": self.base_backups,
            "recoverable_window": {
                "earliest": self.earliest.isoformat() if self.earliest else None,
                "latest": self.latest.isoformat() if self.latest else None,
                "latest_lsn": self.latest_lsn,
            },
            "newest_segment": self.newest_segment,
            "newest_segment_age_seconds": self.newest_segment_age_seconds,
            "errors": self.errors,
        }


def analyse(
    listing: ArchiveListing, cluster: str, bases: Sequence[BaseRef], now: datetime
) -> WindowReport:
    """Gaps, base backup coverage and the recoverable window."""
    gaps = find_gaps(listing)
    base_rows: list[dict[str, Any]] = []
    earliest: datetime | None = None
    latest: datetime | None = None
    latest_lsn: int | None = None
    for b in sorted(bases, key=lambda x: x.finished_at):
        r = reach(listing, b.start_wal)
        stop = parse_wal_name(b.stop_wal, listing.segment_size).segno
        consistent = (
            r.end_lsn is not None and stop is not None and r.end_lsn > stop * listing.segment_size
        )
        base_rows.append(
            {
                "id": b.id,
                "start_wal": b.start_wal,
                "stop_wal": b.stop_wal,
                "consistent": consistent,
                "reaches": r.last_segment,
                "missing": r.missing,
            }
        )
        if not consistent:
            continue
        if earliest is None:
            earliest = b.finished_at
        # The segments up to the backup's stop were pushed before its manifest
        # recorded its end (pg_basebackup waits for them), so their mtimes lie
        # before ``finished_at``; yet the backup's own end is reachable once
        # they are archived: the window never ends before it (the exporter's
        # rule too, exporter/wal_watch.py).
        end_time = b.finished_at if r.end_time is None else max(r.end_time, b.finished_at)
        if latest is None or end_time > latest:
            latest = end_time
            latest_lsn = r.end_lsn
    newest = newest_segment(listing)
    return WindowReport(
        cluster=cluster,
        timelines=listing.timelines(),
        segments=len({f.name for f in listing.files if f.kind == "segment"}),  # a duplicate once
        gaps=gaps,
        base_backups=base_rows,
        earliest=earliest,
        latest=latest,
        latest_lsn=format_lsn(latest_lsn) if latest_lsn is not None else None,
        newest_segment=newest.name if newest else None,
        newest_segment_age_seconds=(now.timestamp() - newest.mtime) if newest else None,
        errors=list(listing.errors),
        duplicates=find_duplicates(listing),
        missing_histories=archive_missing_histories(listing),
    )


def describe_window(report: WindowReport) -> str:
    if report.earliest is None or report.latest is None:
        return "nothing is recoverable (no base backup with its WAL in the archive)"
    return (
        f"recoverable window: {report.earliest.isoformat(timespec='seconds')} .. "
        f"{report.latest.isoformat(timespec='seconds')} (LSN up to {report.latest_lsn})"
    )


def names_in(listing: ArchiveListing) -> Iterable[str]:
    return (f.name for f in listing.files)
