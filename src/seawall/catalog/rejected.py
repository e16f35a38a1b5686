"""Rejected runs: failed runs against a target that does not exist.

Why a place of their own: one typo (``DB_NAME=nosuch``) used to create a
series whose only run failed, and the per-series failure alert kept paging
for the whole failed-run grace (7 days) with nothing to clear it. A run
whose target does not exist (the database or the collection is unknown to
the server) *and* whose series never had a successful backup is recorded
here instead::

    <BACKUP_DIR>/rejected/<engine>/<kind>/<series>/<id>/manifest.json

The manifest is the usual failed manifest (error, duration, target), so
``seawall info`` lists it and the exporter counts it
(``seawall_rejected_runs``, no per-series label: it tells that something
was mistyped, once, without creating a series that pages). ``seawall forget
--series NAME`` clears them; prune drops them after the failed-run grace.

A target that disappears *after* it was backed up successfully (a dropped
database) is a real failure of a live series and stays in the series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seawall.catalog.models import MANIFEST_NAME, Manifest
from seawall.catalog.naming import encode_segment, is_backup_id
from seawall.catalog.store import CatalogError, parse_manifest
from seawall.errors import NotFoundError, StorageError
from seawall.storage.base import Storage

REJECTED_ROOT = "rejected"


class TargetMissing:
    """Mixin for errors that mean "the run's target does not exist on the server".

    The engines raise subclasses of it (with their own exit codes);
    :func:`seawall.catalog.runs.record_failure` reads it to choose where the
    failed manifest goes.
    """


def rejected_prefix(m: Manifest) -> str:
    return f"{REJECTED_ROOT}/{m.engine}/{m.kind}/{encode_segment(m.series)}/{m.id}"


@dataclass(frozen=True)
class RejectedRun:
    manifest: Manifest
    prefix: str

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "series": f"{m.engine}/{m.kind}/{m.series}",
            "id": m.id,
            "time": m.time.isoformat(),
            "target": m.target,
            "error": m.error,
        }


def list_rejected(storage: Storage) -> list[RejectedRun]:
    """Every readable rejected run, newest first (unreadable ones are skipped)."""
    found: list[RejectedRun] = []
    for info in storage.list(REJECTED_ROOT):
        parts = info.key.split("/")
        if len(parts) != 6 or parts[5] != MANIFEST_NAME or not is_backup_id(parts[4]):
            continue
        try:
            m = parse_manifest(storage.read_bytes(info.key), info.key)
        except (CatalogError, NotFoundError, StorageError):
            continue
        found.append(RejectedRun(m, info.key.rsplit("/", 1)[0]))
    found.sort(key=lambda r: (r.manifest.time, r.manifest.id), reverse=True)
    return found
