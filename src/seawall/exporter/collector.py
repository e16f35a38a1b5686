"""The Prometheus collector: the catalog, the WAL archive and the repositories as metrics.

A small object handed its inputs (the repository as a
:class:`~seawall.storage.base.Storage` or a path, a catalog reader, a WAL
state, the mirrors, a retention-policy lookup and a clock), so tests build
it around a real catalog and read values with
``registry.get_sample_value`` without HTTP. It runs at every scrape and
builds the metric families from scratch, so a series that disappeared
from the catalog disappears from the metrics: no stale label sets.

Per-series aggregates (last success, run counts, retention tiers …) are
memoized on the series' *signature* (a number the catalog cache changes
whenever it re-reads the series), so a warm scrape of 10,000 backups costs
the emission of the metrics, not a recomputation.

It never raises because of what is on the volume: anything bad is counted
in ``seawall_catalog_errors`` and skipped.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from seawall import __version__
from seawall.catalog.locks import list_locks
from seawall.catalog.rejected import list_rejected
from seawall.errors import SeawallError
from seawall.exporter.catalog_cache import CatalogCache
from seawall.exporter.metrics_def import METRICS, VERIFICATION_LEVELS
from seawall.exporter.records import CatalogSnapshot, Record, SeriesGroup, SeriesKey
from seawall.exporter.repositories import Repositories
from seawall.exporter.repository_metrics import emit_repositories
from seawall.exporter.wal_state import BaseRef, WalState
from seawall.retention import KINDS, Entry, Policy, apply_policy
from seawall.storage.base import Storage
from seawall.storage.factory import open_storage

log = logging.getLogger("seawall.exporter")

PolicyFor = Callable[[str, str, str], Policy | None]
Clock = Callable[[], float]

#: Qdrant kinds whose series is a collection (full-storage series are nodes).
QDRANT_COLLECTION_KINDS = frozenset({"snapshot", "shard-snapshot"})
#: The ``type`` label of the postgres_backup_* metrics, by backup kind. The
#: operators call pg_dump backups "full" and query ``type="full"`` (issue 16);
#: base backups and the WAL archive get their own values so that no query for
#: one ever matches the other.
POSTGRES_TYPES = {"logical": "full", "base": "base"}
WAL_TYPE = "wal"


class CatalogReader(Protocol):
    """What the collector needs of a catalog: a snapshot per scrape."""

    def scan(self) -> CatalogSnapshot: ...


@dataclass
class SeriesStats:
    """Aggregates of one series, recomputed only when its signature changes."""

    last_success: Record | None = None
    last_run: Record | None = None
    runs: dict[str, int] = field(default_factory=lambda: {"success": 0, "failed": 0})
    successful: int = 0
    stored_bytes: int = 0
    #: the most recent verification of any backup of the series: (at, ok, level)
    verification: tuple[float, bool, int] | None = None
    #: the most recent one that decrypted and decompressed (level decoded or deep):
    #: the stored-level check after each backup (no identity there) does not count
    decoded_verification: tuple[float, bool] | None = None
    tiers: dict[str, int] | None = None
    #: end of each pin in the series (None: for good); counted at scrape time
    pins: list[float | None] = field(default_factory=list)

    def pinned(self, now: float) -> int:
        return sum(1 for until in self.pins if until is None or now < until)


def series_stats(records: list[Record], policy: Policy | None, now: float) -> SeriesStats:
    """Aggregate a series' records (newest first)."""
    stats = SeriesStats()
    entries: list[Entry] = []
    for r in records:
        stats.stored_bytes += r.stored_size
        if r.pinned:
            stats.pins.append(r.pinned_until)
        if r.status in stats.runs:
            stats.runs[r.status] += 1
            if stats.last_run is None:
                stats.last_run = r
        if r.status == "success":
            stats.successful += 1
            if stats.last_success is None:
                stats.last_success = r
        if r.verified_at is not None and (
            stats.verification is None or r.verified_at > stats.verification[0]
        ):
            stats.verification = (r.verified_at, bool(r.verified_ok), r.verified_level or 0)
        if (
            r.verified_at is not None
            and (r.verified_level or 0) >= VERIFICATION_LEVELS["decoded"]
            and (
                stats.decoded_verification is None or r.verified_at > stats.decoded_verification[0]
            )
        ):
            stats.decoded_verification = (r.verified_at, bool(r.verified_ok))
        if r.status != "running":
            entries.append(
                Entry(
                    id=r.id,
                    series=r.kind,  # one series per call; the name does not matter
                    time=datetime.fromtimestamp(r.time, UTC),
                    ok=r.status == "success",
                    verified=r.verified_ok,
                    pinned=r.pinned,
                    pinned_until=(
                        datetime.fromtimestamp(r.pinned_until, UTC)
                        if r.pinned_until is not None
                        else None
                    ),
                )
            )
    if policy is not None and entries:
        try:
            decision = apply_policy(entries, policy, datetime.fromtimestamp(now, UTC))
        except ValueError as exc:  # duplicate ids and the like: skip tiers, keep the rest
            log.warning("retention tiers not computed: %s", exc)
        else:
            tiers: dict[str, int] = dict.fromkeys(KINDS, 0)
            for verdict in decision.verdicts:
                for tier in verdict.tiers:
                    tiers[tier] += 1
            stats.tiers = tiers
    return stats


class _Families:
    """Metric families by name, created on first use, emitted if non-empty."""

    def __init__(self) -> None:
        self._families: dict[str, GaugeMetricFamily] = {}

    def add(self, name: str, labels: Iterable[str], value: float) -> None:
        family = self._families.get(name)
        if family is None:
            d = METRICS[name]
            family = GaugeMetricFamily(name, d.help, labels=list(d.labels))
            self._families[name] = family
        family.add_metric(list(labels), value)

    def __iter__(self) -> Iterator[GaugeMetricFamily]:
        for name in METRICS:
            family = self._families.get(name)
            if family is not None and family.samples:
                yield family


class SeawallCollector:
    """prometheus_client custom collector over one repository (and its mirrors).

    ``repository`` is a path (opened through the one factory) or a Storage.
    With a local volume the catalog is the stat/inotify :class:`CatalogCache`
    and the WAL archive whatever ``wal`` is given (None: no WAL metrics);
    without one (object storage) both come from the primary's periodic
    listing in ``repositories`` (built here, with no mirrors, when not given).
    """

    def __init__(
        self,
        repository: Path | Storage,
        *,
        catalog: CatalogReader | None = None,
        wal: WalState | None = None,
        policy_for: PolicyFor | None = None,
        clock: Clock = time.time,
        memo: bool = True,
        repositories: Repositories | None = None,
    ) -> None:
        self.storage = open_storage(repository) if isinstance(repository, Path) else repository
        if repositories is None:
            label = str(repository) if isinstance(repository, Path) else self.storage.describe()
            repositories = Repositories.of((label, self.storage), clock=clock)
        self.repositories = repositories
        primary = repositories.primary
        if catalog is None:
            catalog = primary.catalog if primary.catalog is not None else CatalogCache(self.storage)
        self.catalog = catalog
        self.wal = wal if wal is not None else primary.wal
        self.policy_for = policy_for
        self.clock = clock
        self.memo = memo
        self._memo: dict[SeriesKey, tuple[object, SeriesStats]] = {}
        self._scrape_lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        """The families this collector may emit (lets the registry check names)."""
        for d in METRICS.values():
            yield GaugeMetricFamily(d.name, d.help, labels=list(d.labels))

    def collect(self) -> Iterable[Metric]:
        # one scrape at a time: the caches are not built for concurrent scans
        with self._scrape_lock:
            return self._collect()

    def _collect(self) -> list[Metric]:
        t0 = time.perf_counter()
        now = self.clock()
        out = _Families()
        self.repositories.refresh_due()
        snap = self.catalog.scan()
        out.add("seawall_backup_dir_accessible", (), 1.0 if snap.readable else 0.0)
        errors = snap.errors
        stats = self._stats(snap.groups, now)
        self._series(out, snap.groups, stats, now)
        self._compat(out, stats)
        self._drills(out, snap.drills)
        if snap.readable:
            errors += self._running(out)
            self._storage(out)
            errors += self._rejected(out, snap)
        wal_bytes = self._wal(out, snap.groups, now)
        emit_repositories(out.add, self.repositories, snap, stats, wal_bytes, now)
        out.add("seawall_catalog_manifests", (), float(snap.manifests))
        out.add("seawall_catalog_errors", (), float(errors))
        out.add("seawall_build_info", (__version__, platform.python_version()), 1.0)
        out.add("seawall_scrape_duration_seconds", (), time.perf_counter() - t0)
        return list(out)

    # --- series -----------------------------------------------------------------------
    def _policy(self, key: SeriesKey) -> Policy | None:
        if self.policy_for is None:
            return None
        try:
            return self.policy_for(*key)
        except Exception as exc:  # a bad override must not take the exporter down
            log.warning("no retention policy for %s: %s", "/".join(key), exc)
            return None

    def _stats(
        self, groups: dict[SeriesKey, SeriesGroup], now: float
    ) -> dict[SeriesKey, SeriesStats]:
        result: dict[SeriesKey, SeriesStats] = {}
        memo: dict[SeriesKey, tuple[object, SeriesStats]] = {}
        for key, group in groups.items():
            policy = self._policy(key)
            # tiers depend on day boundaries in the policy's time zone: keep
            # the hour in the memo key so they follow the clock
            token = (group.signature, policy, int(now // 3600))
            cached = self._memo.get(key)
            if self.memo and cached is not None and cached[0] == token:
                stats = cached[1]
            else:
                stats = series_stats(group.records, policy, now)
            memo[key] = (token, stats)
            result[key] = stats
        self._memo = memo if self.memo else {}
        return result

    @staticmethod
    def _series(
        out: _Families,
        groups: dict[SeriesKey, SeriesGroup],
        stats: dict[SeriesKey, SeriesStats],
        now: float,
    ) -> None:
        for key in sorted(groups):
            s = stats[key]
            if s.last_success is not None:
                out.add("seawall_backup_last_success_timestamp_seconds", key, s.last_success.time)
                out.add(
                    "seawall_backup_last_success_size_bytes", key, float(s.last_success.stored_size)
                )
            if s.last_run is not None:
                out.add("seawall_backup_last_run_timestamp_seconds", key, s.last_run.time)
                ok = 1.0 if s.last_run.status == "success" else 0.0
                out.add("seawall_backup_last_run_success", key, ok)
                if s.last_run.duration is not None:
                    out.add("seawall_backup_last_run_duration_seconds", key, s.last_run.duration)
            for result, n in s.runs.items():
                out.add("seawall_backup_runs", (*key, result), float(n))
            out.add("seawall_backups", key, float(s.successful))
            out.add("seawall_backups_pinned", key, float(s.pinned(now)))
            out.add("seawall_backup_stored_bytes", key, float(s.stored_bytes))
            if s.tiers is not None:
                for tier, n in s.tiers.items():
                    out.add("seawall_backups_by_tier", (*key, tier), float(n))
            if s.verification is not None:
                at, ok_v, level = s.verification
                out.add("seawall_backup_last_verification_timestamp_seconds", key, at)
                out.add("seawall_backup_last_verification_success", key, 1.0 if ok_v else 0.0)
                out.add("seawall_backup_last_verification_level", key, float(level))
            if s.decoded_verification is not None:
                at, ok_v = s.decoded_verification
                out.add("seawall_backup_last_decoded_verification_timestamp_seconds", key, at)
                out.add(
                    "seawall_backup_last_decoded_verification_success", key, 1.0 if ok_v else 0.0
                )

    @staticmethod
    def _compat(out: _Families, stats: dict[SeriesKey, SeriesStats]) -> None:
        """The fixed postgres_backup_* / qdrant_backup_* names."""
        qdrant: dict[str, list[SeriesStats]] = {}
        for (engine, kind, series), s in sorted(stats.items()):
            if engine == "postgresql" and kind in POSTGRES_TYPES:
                _compat_one(out, "postgres", (series, POSTGRES_TYPES[kind]), [s])
            elif engine == "qdrant" and kind in QDRANT_COLLECTION_KINDS:
                qdrant.setdefault(series, []).append(s)
        for collection, parts in sorted(qdrant.items()):
            _compat_one(out, "qdrant", (collection,), parts)

    @staticmethod
    def _drills(out: _Families, drills: dict[SeriesKey, SeriesGroup]) -> None:
        for (engine, _, series), group in sorted(drills.items()):
            labels = (engine, series)
            done = [r for r in group.records if r.status in ("success", "failed")]
            if not done:
                continue
            last = done[0]
            out.add("seawall_drill_last_timestamp_seconds", labels, last.time)
            out.add("seawall_drill_last_success", labels, 1.0 if last.status == "success" else 0.0)
            passed = next((r for r in done if r.status == "success"), None)
            if passed is not None:
                out.add("seawall_drill_last_success_timestamp_seconds", labels, passed.time)
            rto = next((r.rto_seconds for r in done if r.rto_seconds is not None), None)
            rpo = next((r.rpo_seconds for r in done if r.rpo_seconds is not None), None)
            if rto is not None:
                out.add("seawall_drill_rto_seconds", labels, rto)
            if rpo is not None:
                out.add("seawall_drill_rpo_seconds", labels, rpo)

    def _running(self, out: _Families) -> int:
        """Runs in progress from the series locks; returns errors met.

        The locks are flock files on the local volume (ADR 0008); on object
        storage there are none to read here, so no run shows as running.
        """
        vol = self.storage.local_volume()
        if vol is None:
            return 0
        try:
            locks = list(list_locks(vol.root))
        except (OSError, ValueError) as exc:
            log.warning("cannot read the series locks: %s", exc)
            return 1
        seen: set[tuple[str, str, str]] = set()
        for lock in locks:
            key = (lock.engine, lock.kind, lock.series)
            if not lock.held or lock.started_at is None or lock.engine == "hold" or key in seen:
                continue
            seen.add(key)
            out.add(
                "seawall_backup_running_start_timestamp_seconds", key, lock.started_at.timestamp()
            )
        return 0

    def _rejected(self, out: _Families, snap: CatalogSnapshot) -> int:
        """Runs against targets that do not exist (catalog/rejected.py): a count, no series.

        A listed repository's snapshot carries them (a scrape never lists a
        bucket); on a local volume they are read here. Returns errors met.
        """
        times = snap.rejected
        if times is None:
            try:
                times = [r.manifest.time.timestamp() for r in list_rejected(self.storage)]
            except SeawallError as exc:
                log.warning("cannot read the rejected runs: %s", exc)
                return 1
        out.add("seawall_rejected_runs", (), float(len(times)))
        if times:
            out.add("seawall_rejected_run_last_timestamp_seconds", (), times[0])
        return 0

    def _storage(self, out: _Families) -> None:
        usage = self.storage.usage()
        if usage is None:
            return
        out.add("seawall_storage_size_bytes", (), float(usage.total))
        out.add("seawall_storage_used_bytes", (), float(usage.used))
        out.add("seawall_storage_free_bytes", (), float(usage.free))
        denominator = usage.used + usage.free
        if denominator > 0:
            out.add("seawall_storage_used_ratio", (), usage.used / denominator)

    # --- WAL and PITR ------------------------------------------------------------------
    def _wal(self, out: _Families, groups: dict[SeriesKey, SeriesGroup], now: float) -> int:
        """The WAL metrics; returns the archive's bytes (for the repository's total)."""
        if self.wal is None:
            return 0
        try:
            summaries = self.wal.summaries()
        except Exception:  # the watcher must never break the scrape
            log.warning("WAL archive summary failed", exc_info=True)
            return 0
        for s in summaries:
            labels = (s.cluster,)
            out.add("seawall_wal_segments", labels, float(s.segments))
            out.add("seawall_wal_archive_bytes", labels, float(s.bytes))
            out.add("seawall_wal_gaps", labels, float(s.gaps))
            out.add("seawall_wal_missing_segments", labels, float(s.missing_segments))
            # the archive as a postgres_backup_* series of its own (type="wal"):
            # its "last success" is the newest archived segment; no run, so no
            # status or duration
            out.add("postgres_backup_size_bytes", (s.cluster, WAL_TYPE), float(s.bytes))
            if s.newest_mtime is not None:
                out.add(
                    "postgres_backup_last_success_timestamp", (s.cluster, WAL_TYPE), s.newest_mtime
                )
                out.add("seawall_wal_last_archived_timestamp_seconds", labels, s.newest_mtime)
                out.add(
                    "seawall_wal_newest_segment_age_seconds", labels, max(now - s.newest_mtime, 0.0)
                )
            group = groups.get(("postgresql", "base", s.cluster))
            bases = [
                BaseRef(r.time, r.timeline, r.start_wal, r.stop_wal)
                for r in (group.records if group else [])
                if r.status == "success"
                and r.timeline is not None
                and r.start_wal is not None
                and r.stop_wal is not None
            ]
            window = self.wal.pitr_window(s.cluster, bases) if bases else None
            if window is not None:
                earliest, latest = window
                out.add("seawall_pitr_earliest_timestamp_seconds", labels, earliest)
                out.add("seawall_pitr_latest_timestamp_seconds", labels, latest)
                out.add("seawall_pitr_window_seconds", labels, max(latest - earliest, 0.0))
        return sum(s.bytes for s in summaries)


def _compat_one(
    out: _Families, prefix: str, labels: tuple[str, ...], parts: list[SeriesStats]
) -> None:
    last_success = max(
        (p.last_success for p in parts if p.last_success is not None),
        key=lambda r: (r.time, r.id),
        default=None,
    )
    last_run = max(
        (p.last_run for p in parts if p.last_run is not None),
        key=lambda r: (r.time, r.id),
        default=None,
    )
    if last_success is not None:
        out.add(f"{prefix}_backup_last_success_timestamp", labels, last_success.time)
        out.add(f"{prefix}_backup_size_bytes", labels, float(last_success.stored_size))
    if last_run is not None:
        out.add(f"{prefix}_backup_status", labels, 1.0 if last_run.status == "success" else 0.0)
        if last_run.duration is not None:
            out.add(f"{prefix}_backup_duration_seconds", labels, last_run.duration)


def make_registry(collector: SeawallCollector) -> CollectorRegistry:
    """A registry of its own (no process/platform collectors mixed in)."""
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
