"""The per-repository metrics, from the primary's catalog and every listing.

Why apart from the collector: it is the one place that decides what each
repository reports when it is listed (object storage, mirrors) and when it
is not (a local primary without mirrors, whose catalog and WAL archive the
collector already reads); see :mod:`seawall.exporter.repositories`.
Nothing here does I/O: a scrape reads the result of the last listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from seawall.exporter.records import CatalogSnapshot, Record, SeriesKey
from seawall.exporter.repositories import MIRROR, Repositories, RepositoryView

Add = Callable[[str, Iterable[str], float], None]


class _Stats(Protocol):
    last_success: Record | None
    stored_bytes: int


def emit_repositories(
    add: Add,
    repos: Repositories,
    snap: CatalogSnapshot,
    stats: Mapping[SeriesKey, _Stats],
    wal_bytes: int,
    now: float,
) -> None:
    """Add the seawall_repository_* and seawall_mirror_* samples of every repository."""
    for view in repos:
        label = view.label
        add("seawall_repository_info", (label, view.role), 1.0)
        primary = view is repos.primary
        reachable = view.reachable
        if primary and not view.listed:
            reachable = snap.readable
        if reachable is None:
            continue  # not looked at yet (the first listing is running): unknown, not down
        add("seawall_repository_reachable", (label,), 1.0 if reachable else 0.0)
        if view.listing is not None:
            add("seawall_repository_last_refresh_timestamp_seconds", (label,), view.listing.at)
            add("seawall_repository_stored_bytes", (label,), float(view.listing.bytes))
            add("seawall_repository_objects", (label,), float(view.listing.objects))
        elif primary and not view.listed:
            stored = sum(s.stored_bytes for s in stats.values()) + wal_bytes
            add("seawall_repository_stored_bytes", (label,), float(stored))
        for key, when in sorted(_newest(view, primary, stats).items()):
            add("seawall_repository_backup_last_success_timestamp_seconds", (label, *key), when)
        if view.role == MIRROR:
            lag = repos.lag(view)
            if lag is not None:
                missing, oldest = lag
                add("seawall_mirror_lag_objects", (label,), float(missing))
                # the oldest mtime is stamped by the primary's clock (S3: the
                # server's), so its age is taken by that clock, not this host's
                primary_now = now + repos.primary.skew
                age = max(primary_now - oldest, 0.0) if oldest is not None else 0.0
                add("seawall_mirror_lag_seconds", (label,), age)


def _newest(
    view: RepositoryView, primary: bool, stats: Mapping[SeriesKey, _Stats]
) -> dict[SeriesKey, float]:
    """End time of the newest successful backup of each series the repository holds."""
    if primary:  # the collector's catalog is the primary's
        return {k: s.last_success.time for k, s in stats.items() if s.last_success is not None}
    if view.catalog is None:
        return {}
    out: dict[SeriesKey, float] = {}
    for key, group in view.catalog.scan().groups.items():
        newest = next((r for r in group.records if r.status == "success"), None)
        if newest is not None:
            out[key] = newest.time
    return out
