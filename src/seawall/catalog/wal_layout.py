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
    from seawall.storage.base import Storage


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


def existing_versions(storage: Storage, cluster: str, name: str) -> list[str]:
    """Keys already archived under WAL name ``name`` (normally zero or one).

    Here rather than in wal-push's module: wal-fetch needs it too, and must
    not import the push machinery (it runs once per segment during recovery).
    """
    vol = storage.local_volume()
    if vol is None:  # object storage: one listing of the segment's directory
        entries = [info.key.rsplit("/", 1)[-1] for info in storage.list(wal_dir(cluster, name))]
    else:  # a directory: one listdir, no stat per entry (the wal-fetch hot path)
        try:
            entries = os.listdir(vol.path(wal_dir(cluster, name)))
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


def wal_clusters(storage: Storage) -> list[str]:
    """The (encoded) cluster names that have a WAL archive, sorted.

    On a directory one ``scandir`` of the WAL root; on object storage a
    listing of it (object stores have no directories to read).
    """
    vol = storage.local_volume()
    if vol is not None:
        try:
            with os.scandir(vol.path(WAL_ROOT)) as it:
                return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return []
    found = set()
    for info in storage.list(WAL_ROOT):
        rest = info.key[len(WAL_ROOT) + 1 :]
        if "/" in rest:
            found.add(rest.split("/", 1)[0])
    return sorted(found)
