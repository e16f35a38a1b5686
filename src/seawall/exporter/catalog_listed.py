"""The catalog of a repository without a local volume, rebuilt from a listing.

Why a listing and not the directory walk of :mod:`seawall.exporter.catalog_cache`:
an object store has no directories to ``scandir``, no ``stat`` and no
inotify. One listing (``ListObjectsV2``, 1,000 keys a request) names every
manifest with its size and modification time, which plays the part of the
``(mtime, size)`` stamp: only manifests whose stamp changed are fetched and
parsed again, so a refresh of an unchanged catalog of 10,000 backups costs
the listing and no GET.

The listing is made by :class:`seawall.exporter.repositories.RepositoryView`
in a background thread every ``--refresh-interval`` seconds, never at a
scrape: a scrape serves the snapshot of the last refresh. When a refresh
fails the last snapshot is kept (marked unreadable), so age alerts keep
working on what was last seen instead of the series vanishing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from seawall.catalog.models import MANIFEST_NAME
from seawall.catalog.naming import is_backup_id
from seawall.catalog.rejected import REJECTED_ROOT
from seawall.catalog.store import CatalogError, parse_manifest
from seawall.errors import SeawallError
from seawall.exporter.records import (
    MAX_MANIFEST_BYTES,
    CatalogSnapshot,
    Record,
    SeriesGroup,
    SeriesKey,
    manifest_place,
    parse_record,
)
from seawall.storage.base import ObjectInfo, Storage

log = logging.getLogger("seawall.exporter.catalog")

#: manifest key -> ((size, mtime), its Record or why it is not usable)
_Entries = dict[str, tuple[tuple[int, float], "Record | str"]]


class ListedCatalog:
    """Records of every manifest a listing names; re-reads only changed ones."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._entries: _Entries = {}
        self._groups: dict[tuple[SeriesKey, bool], tuple[frozenset[str], SeriesGroup]] = {}
        self._generation = 0
        #: rejected run manifest key -> ((size, mtime), its end time or None if unusable)
        self._rejected: dict[str, tuple[tuple[int, float], float | None]] = {}
        self._snapshot = CatalogSnapshot(readable=False, rejected=[])
        self.parsed = 0  # manifests fetched and parsed so far (tests check the cache works)

    def scan(self) -> CatalogSnapshot:
        """The snapshot of the last refresh (no I/O: scrapes call this)."""
        return self._snapshot

    def unreachable(self) -> None:
        """The last refresh failed: keep what was seen, say it is not current."""
        self._snapshot = replace(self._snapshot, readable=False)

    def update(self, objects: Iterable[ObjectInfo]) -> CatalogSnapshot:
        """Rebuild the snapshot from a listing (the whole repository or its catalog part)."""
        entries: _Entries = {}
        members: dict[tuple[SeriesKey, bool], list[str]] = {}
        errors = 0
        rejected: dict[str, tuple[tuple[int, float], float | None]] = {}
        for info in objects:
            place = manifest_place(info.key)
            if place is None:
                if _is_rejected(info.key):
                    rejected[info.key] = self._rejected_time(info)
                continue
            key, backup_id, drill = place
            stamp = (info.size, info.mtime)
            hit = self._entries.get(info.key)
            value = hit[1] if hit is not None and hit[0] == stamp else None
            if value is None:
                value, lasting = self._read(info, key, backup_id)
                if not lasting:  # a failed GET: try again at the next refresh
                    stamp = (-1, -1.0)
            entries[info.key] = (stamp, value)
            members.setdefault((key, drill), []).append(info.key)
        snap = CatalogSnapshot()
        groups: dict[tuple[SeriesKey, bool], tuple[frozenset[str], SeriesGroup]] = {}
        for where, keys in members.items():
            records = [v for k in keys if not isinstance(v := entries[k][1], str)]
            errors += len(keys) - len(records)
            if not records:
                continue
            token = frozenset(f"{k}\0{entries[k][0]}" for k in keys)
            old = self._groups.get(where)
            if old is not None and old[0] == token:
                group = old[1]
            else:
                records.sort(key=lambda r: (r.time, r.id), reverse=True)
                self._generation += 1
                group = SeriesGroup(where[0], records, self._generation)
            groups[where] = (token, group)
            (snap.drills if where[1] else snap.groups)[where[0]] = group
            snap.manifests += len(records)
        snap.errors = errors
        snap.rejected = sorted((t for _, t in rejected.values() if t is not None), reverse=True)
        self._rejected = rejected
        self._entries, self._groups, self._snapshot = entries, groups, snap
        return snap

    def _rejected_time(self, info: ObjectInfo) -> tuple[tuple[int, float], float | None]:
        """A rejected run's end time, read once per version of its manifest."""
        stamp = (info.size, info.mtime)
        hit = self._rejected.get(info.key)
        if hit is not None and hit[0] == stamp:
            return hit
        if info.size > MAX_MANIFEST_BYTES:
            return stamp, None
        try:
            m = parse_manifest(self.storage.read_bytes(info.key), info.key)
        except CatalogError:
            return stamp, None  # unusable until it changes, as list_rejected skips it
        except (SeawallError, OSError):
            return (-1, -1.0), None  # a failed GET: try again at the next refresh
        return stamp, m.time.timestamp()

    def _read(self, info: ObjectInfo, key: SeriesKey, backup_id: str) -> tuple[Record | str, bool]:
        """The manifest's Record (or why not), and whether that answer lasts until it changes."""
        self.parsed += 1
        if info.size > MAX_MANIFEST_BYTES:
            msg = f"{info.key}: {info.size} bytes, not a manifest of sane size; skipped"
            log.warning("%s", msg)
            return msg, True
        try:
            data = self.storage.read_bytes(info.key)
        except (SeawallError, OSError) as exc:
            msg = f"{info.key}: unreadable ({exc})"
            log.warning("%s", msg)
            return msg, False
        return parse_record(data, info.key, key, backup_id), True


def _is_rejected(key: str) -> bool:
    """``rejected/<engine>/<kind>/<series>/<id>/manifest.json`` (catalog/rejected.py)."""
    parts = key.split("/")
    return (
        len(parts) == 6
        and parts[0] == REJECTED_ROOT
        and parts[5] == MANIFEST_NAME
        and is_backup_id(parts[4])
    )
