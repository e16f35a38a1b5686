"""Per-peer snapshot registry.

Why a registry instead of a directory listing: snapshot names come from the
server and seawall must treat them as untrusted, so the test server must be
able to *report* hostile names (``../../etc/passwd``) without ever using them
as paths. Files are stored under random ids; names are only dictionary keys.

A snapshot becomes visible (listed, downloadable) only once it is complete,
as in Qdrant, which writes to a temporary file and renames it at the end.
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SnapshotEntry:
    scope: str  # "collection:<name>", "shard:<name>:<id>" or "full"
    name: str
    path: Path
    size: int
    checksum: str
    created: dt.datetime

    def describe(self, checksum: str | None = None) -> dict[str, object]:
        """``SnapshotDescription`` of the spec."""
        return {
            "name": self.name,
            "creation_time": self.created.strftime("%Y-%m-%dT%H:%M:%S"),
            "size": self.size,
            "checksum": checksum if checksum is not None else self.checksum,
        }


def collection_scope(name: str) -> str:
    return f"collection:{name}"


def shard_scope(name: str, shard_id: int) -> str:
    return f"shard:{name}:{shard_id}"


FULL_SCOPE = "full"


class SnapshotStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], SnapshotEntry] = {}

    def new_file(self) -> Path:
        """A fresh, hidden path to write a snapshot into."""
        return self.root / f".{uuid.uuid4().hex}.partial"

    def unique_name(self, scope: str, base: str) -> str:
        """Qdrant names snapshots by the second; disambiguate same-second ones."""
        with self._lock:
            name = f"{base}.snapshot"
            n = 1
            while (scope, name) in self._entries:
                name = f"{base}-{n}.snapshot"
                n += 1
            return name

    def publish(
        self, scope: str, name: str, partial: Path, size: int, checksum: str
    ) -> SnapshotEntry:
        final = self.root / f"{uuid.uuid4().hex}.snapshot"
        os.replace(partial, final)
        entry = SnapshotEntry(scope, name, final, size, checksum, dt.datetime.now(dt.UTC))
        with self._lock:
            old = self._entries.pop((scope, name), None)
            self._entries[(scope, name)] = entry
        if old is not None:
            old.path.unlink(missing_ok=True)
        return entry

    def list(self, scope: str) -> builtins.list[SnapshotEntry]:
        with self._lock:
            return sorted(
                (e for (s, _), e in self._entries.items() if s == scope),
                key=lambda e: (e.created, e.name),
            )

    def get(self, scope: str, name: str) -> SnapshotEntry | None:
        with self._lock:
            return self._entries.get((scope, name))

    def delete(self, scope: str, name: str) -> bool:
        with self._lock:
            entry = self._entries.pop((scope, name), None)
        if entry is None:
            return False
        entry.path.unlink(missing_ok=True)
        return True

    def drop_scope_prefix(self, prefix: str) -> None:
        with self._lock:
            doomed = [k for k in self._entries if k[0] == prefix or k[0].startswith(prefix + ":")]
            entries = [self._entries.pop(k) for k in doomed]
        for entry in entries:
            entry.path.unlink(missing_ok=True)

    def all_entries(self) -> builtins.list[SnapshotEntry]:
        with self._lock:
            return list(self._entries.values())


def timestamp_name() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")
