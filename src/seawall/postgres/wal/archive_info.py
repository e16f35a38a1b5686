"""Reading and writing ``archive.json`` through the repository.

The record itself (its schema, what it is for) is
:mod:`seawall.walcore.archive_info`.
"""

from __future__ import annotations

from seawall.catalog.wal_layout import archive_info_key
from seawall.errors import NotFoundError, VerificationError
from seawall.storage.base import Storage
from seawall.walcore.archive_info import ArchiveInfo, parse_archive_info


def read_archive_info(storage: Storage, cluster: str) -> ArchiveInfo | None:
    """The archive's identity, or None if nothing was pushed yet."""
    key = archive_info_key(cluster)
    try:
        raw = storage.read_bytes(key)
    except NotFoundError:
        return None
    try:
        return parse_archive_info(raw, cluster)
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(
            f"{key} is corrupt ({exc}); restore it from the base backup manifests "
            "(system identifier, wal_segment_size) or remove it to let the next push rewrite it"
        ) from exc


def write_archive_info(storage: Storage, info: ArchiveInfo) -> None:
    storage.write_bytes(archive_info_key(info.cluster), info.to_json())
