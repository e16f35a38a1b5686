"""Snapshots an interrupted backup left on the Qdrant server, found and deleted.

Why: seawall deletes the server's copy of every snapshot it took, also after
a failure, because leftover snapshots (each the collection's full size) fill
Qdrant's disk. A backup that is *killed* (SIGKILL, the OOM killer, a
Kubernetes Job's deadline or an evicted pod) runs no cleanup, and Qdrant
finishes a snapshot whose client has gone. Nothing ever deleted that copy:
one more per interrupted run, until Qdrant's disk is full.

How: before creating a snapshot seawall writes a record into the repository
(``.locks/qdrant-snapshots/``: per-repository bookkeeping, never mirrored)
naming the server, the snapshot scope, the snapshots that existed already and
when the run started. The record is removed once the run's own snapshot is
deleted. A record still there at the next backup of that scope (which holds
the same series lock) means the earlier run did not finish: every snapshot
of the scope that is not in the record's list and was created within the
earlier run's possible lifetime is deleted. Snapshots an operator made
before that run, or later, are left alone.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from seawall.errors import SeawallError
from seawall.log import get_logger
from seawall.qdrant.client import QdrantClient
from seawall.qdrant.snapshots import (
    SnapshotInfo,
    SnapshotScope,
    delete_snapshot,
    list_snapshots,
    usable_name,
)
from seawall.storage.base import Storage

log = get_logger("qdrant.leftovers")

PREFIX = ".locks/qdrant-snapshots"
#: clock skew between this host and Qdrant tolerated when matching creation times
SKEW = timedelta(minutes=10)


def record_key(client: QdrantClient, scope: SnapshotScope) -> str:
    digest = hashlib.sha256(f"{client.display_url}\n{scope.path}".encode()).hexdigest()[:24]
    return f"{PREFIX}/{digest}.json"


def _created(info: SnapshotInfo) -> datetime | None:
    if not info.creation_time:
        return None
    try:
        when = datetime.fromisoformat(info.creation_time)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _left_by(record: dict[str, Any], info: SnapshotInfo, lifetime: timedelta) -> bool:
    """Whether ``info`` is a snapshot the run described by ``record`` created."""
    if not usable_name(info.name) or info.name in set(record.get("before") or ()):
        return False
    created = _created(info)
    try:
        started = datetime.fromisoformat(str(record["started"]))
    except (KeyError, ValueError):
        return False
    if created is None:
        return True  # not in the list before that run, and nothing says it is newer
    return started - SKEW <= created <= started + lifetime + SKEW


def sweep(storage: Storage, client: QdrantClient, scope: SnapshotScope) -> list[str]:
    """Delete what an interrupted run left for ``scope``; the names deleted.

    Never raises for the server: a sweep that cannot finish leaves the record
    for the next run, and the backup goes on.
    """
    key = record_key(client, scope)
    if not storage.exists(key):
        return []
    try:
        record = json.loads(storage.read_bytes(key))
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError):
        storage.delete(key)  # unreadable: nothing to go by
        return []
    lifetime = timedelta(seconds=float(record.get("lifetime_s") or 0))
    try:
        leftovers = [s for s in list_snapshots(client, scope) if _left_by(record, s, lifetime)]
    except SeawallError as exc:
        log.warning(
            "could not list snapshots to delete an interrupted run's leftovers",
            extra={"scope": scope.label, "error": str(exc)},
        )
        return []
    deleted = [s.name for s in leftovers if delete_snapshot(client, scope, s.name)]
    for name in deleted:
        log.warning(
            "deleted a snapshot an interrupted seawall run left on the server",
            extra={"scope": scope.label, "snapshot": name, "since": record.get("started")},
        )
    if len(deleted) == len(leftovers):
        storage.delete(key)
    return deleted


def begin(storage: Storage, client: QdrantClient, scope: SnapshotScope, lifetime_s: float) -> str:
    """Record that a snapshot of ``scope`` is about to be created; the record's key."""
    key = record_key(client, scope)
    before = sorted(s.name for s in list_snapshots(client, scope))
    body = {
        "server": client.display_url,
        "scope": scope.path,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "lifetime_s": lifetime_s,
        "before": before,
    }
    storage.write_bytes(key, json.dumps(body, indent=1).encode() + b"\n")
    return key
