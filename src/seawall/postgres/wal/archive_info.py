"""``archive.json``: which cluster a WAL archive belongs to.

The first push of a segment writes it; every later push compares the
segment's header with it, so WAL of another cluster (a copy-pasted
archive_command, a rebuilt primary with a new system identifier) is refused
instead of silently mixing two histories under one name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from seawall.catalog.wal_layout import archive_info_key
from seawall.errors import NotFoundError, VerificationError
from seawall.storage.base import Storage

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ArchiveInfo:
    system_identifier: str
    wal_segment_size: int
    cluster: str
    created_at: str = ""

    def to_json(self) -> bytes:
        data = {
            "format_version": FORMAT_VERSION,
            "cluster": self.cluster,
            "system_identifier": self.system_identifier,
            "wal_segment_size": self.wal_segment_size,
            "created_at": self.created_at or datetime.now(UTC).isoformat(),
        }
        return (json.dumps(data, indent=2) + "\n").encode()


def read_archive_info(storage: Storage, cluster: str) -> ArchiveInfo | None:
    """The archive's identity, or None if nothing was pushed yet."""
    key = archive_info_key(cluster)
    try:
        raw = storage.read_bytes(key)
    except NotFoundError:
        return None
    try:
        data = json.loads(raw)
        return ArchiveInfo(
            system_identifier=str(data["system_identifier"]),
            wal_segment_size=int(data["wal_segment_size"]),
            cluster=str(data.get("cluster", cluster)),
            created_at=str(data.get("created_at", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(
            f"{key} is corrupt ({exc}); restore it from the base backup manifests "
            "(system identifier, wal_segment_size) or remove it to let the next push rewrite it"
        ) from exc


def write_archive_info(storage: Storage, info: ArchiveInfo) -> None:
    storage.write_bytes(archive_info_key(info.cluster), info.to_json())
