"""Layout of the WAL archive on the backup volume (pure naming, no I/O).

::

    postgresql/wal/<cluster>/archive.json                      system id, segment size
    postgresql/wal/<cluster>/<TTTTTTTTLLLLLLLL>/<walname>-<sha>.<zst|gz>[.age]
    postgresql/wal/<cluster>/history/<TTTTTTTT>.history-<sha>.<zst|gz>[.age]

``<sha>`` is the first 40 hex digits of the sha256 of the *raw* WAL file (as
pgBackRest does with sha1). The name alone therefore tells (a) which segment
it is, (b) how to decode it, and (c) what its content must hash to after
decoding, so ``wal-fetch`` checks integrity without any other metadata, and
``wal-push`` detects "same segment, different content" by listing one
directory (under the name's claim, ``<walname>`` + :data:`CLAIM_SUFFIX`, an
exclusive flock: ADR 0008). The 16-hex sub-directories keep each directory at 256 segments
per 4 GiB of WAL (a flat directory of 100,000 files is slow to list).

Used by the WAL commands (write side) and the exporter (read side).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seawall.catalog.naming import encode_segment

if TYPE_CHECKING:
    from seawall.storage.base import Storage

WAL_ROOT = "postgresql/wal"
ARCHIVE_INFO = "archive.json"
SHA_LEN = 40
#: per-name lock file of wal-push (``fastpush.claim``); ends like a temporary
#: (``storage.base.is_partial_name``), so every listing skips it
CLAIM_SUFFIX = ".claim.partial-00000000"

_SEG = r"[0-9A-F]{24}"
_NAME = re.compile(
    rf"^(?P<name>{_SEG}(?:\.partial|\.[0-9A-F]{{8}}\.backup)?|[0-9A-F]{{8}}\.history)"
    rf"-(?P<sha>[0-9a-f]{{{SHA_LEN}}})(?P<suffix>(?:\.zst|\.gz)?(?:\.age)?)$"
)


@dataclass(frozen=True)
class WalObject:
    """One archived WAL file as described by its key."""

    key: str
    name: str  # the WAL file name PostgreSQL knows (000000010000000000000003)
    sha256_prefix: str
    compression: str  # zstd | gzip | none
    encrypted: bool

    @property
    def is_segment(self) -> bool:
        return len(self.name) == 24


def wal_prefix(cluster: str) -> str:
    return f"{WAL_ROOT}/{encode_segment(cluster)}"


def archive_info_key(cluster: str) -> str:
    return f"{wal_prefix(cluster)}/{ARCHIVE_INFO}"


def wal_dir(cluster: str, walname: str) -> str:
    sub = "history" if walname.endswith(".history") else walname[:16]
    return f"{wal_prefix(cluster)}/{sub}"


def wal_key(cluster: str, walname: str, raw_sha256: str, suffix: str) -> str:
    """Key of an archived WAL file; ``suffix`` is e.g. ``.zst.age``."""
    if not _NAME.match(f"{walname}-{raw_sha256[:SHA_LEN]}{suffix}"):
        raise ValueError(f"not a WAL file name: {walname!r}")
    return f"{wal_dir(cluster, walname)}/{walname}-{raw_sha256[:SHA_LEN]}{suffix}"


def parse_wal_key(key: str) -> WalObject | None:
    """Parse a key (or bare file name) of the archive; None if it is not one."""
    base = key.rsplit("/", 1)[-1]
    m = _NAME.match(base)
    if not m:
        return None
    suffix = m.group("suffix")
    compression = "zstd" if ".zst" in suffix else "gzip" if ".gz" in suffix else "none"
    return WalObject(key, m.group("name"), m.group("sha"), compression, suffix.endswith(".age"))


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
            obj = parse_wal_key(entry)
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
