"""Keys of the WAL archive in the repository for a cluster, and its listing.

The layout itself (where a file goes, what its name says, the constants) is
:mod:`seawall.walcore.layout` and :mod:`seawall.walcore.archived`; here are
the parts that need the catalog's encoding of the cluster name or the
storage. Used by the WAL commands (write side) and the exporter (read side).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from seawall.catalog.naming import encode_segment
from seawall.walcore.archived import parse_archived_name
from seawall.walcore.layout import ARCHIVE_INFO, WAL_ROOT, archived_name, subdir

if TYPE_CHECKING:
    from seawall.storage.local import LocalStorage


def wal_prefix(cluster: str) -> str:
    return f"{WAL_ROOT}/{encode_segment(cluster)}"


def archive_info_key(cluster: str) -> str:
    return f"{wal_prefix(cluster)}/{ARCHIVE_INFO}"


def wal_dir(cluster: str, walname: str) -> str:
    return f"{wal_prefix(cluster)}/{subdir(walname)}"


def wal_key(cluster: str, walname: str, raw_sha256: str, suffix: str) -> str:
    """Key of an archived WAL file; ``suffix`` is e.g. ``.zst.age``."""
    base = archived_name(walname, raw_sha256, suffix)
    if parse_archived_name(base) is None:
        raise ValueError(f"not a WAL file name: {walname!r}")
    return f"{wal_dir(cluster, walname)}/{base}"


def existing_versions(storage: LocalStorage, cluster: str, name: str) -> list[str]:
    """Keys already archived under WAL name ``name`` (normally zero or one).

    Here rather than in wal-push's module: wal-fetch needs it too, and must
    not import the push machinery (it runs once per segment during recovery).
    """
    directory = storage.path(wal_dir(cluster, name))
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    prefix = f"{name}-"
    found = []
    for entry in entries:
        if entry.startswith(prefix):
            obj = parse_archived_name(entry)
            if obj is not None and obj.name == name:
                found.append(f"{wal_dir(cluster, name)}/{entry}")
    return sorted(found)
