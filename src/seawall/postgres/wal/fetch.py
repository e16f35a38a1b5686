"""``wal-fetch``: hand PostgreSQL one archived file during recovery.

PostgreSQL asks for files that do not exist as a normal part of recovery
(the next timeline's history file, the segment after the last one): a
missing file is :class:`NotFoundError`, which the command turns into a quiet
exit 1. Anything else — a corrupt file, a wrong key — is loud.

The destination is written to a temporary name beside it and renamed, so
PostgreSQL never sees half a segment; the raw sha256 prefix in the archive
key is checked after decoding, before the rename.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from seawall.catalog.wal_layout import existing_versions
from seawall.errors import ConfigError, NotFoundError, StorageError, VerificationError
from seawall.pipeline.decode import decode_to
from seawall.postgres.wal.envconfig import WalConfig
from seawall.storage.base import Storage
from seawall.walcore.archived import WalObject, parse_wal_key
from seawall.walcore.layout import SHA_LEN
from seawall.walcore.names import parse_wal_name


@dataclass(frozen=True)
class FetchResult:
    name: str
    key: str
    raw_size: int


class _HashingFile:
    def __init__(self, fh: object) -> None:
        self._fh = fh
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self._fh.write(data)  # type: ignore[attr-defined]
        self.hash.update(data)
        self.count += len(data)
        return len(data)


def find_wal(storage: Storage, cluster: str, name: str) -> str:
    """The archive key of WAL file ``name``; NotFoundError if absent."""
    keys = existing_versions(storage, cluster, name)
    if not keys:
        raise NotFoundError(f"{name} is not in the archive {storage.describe()}")
    if len(keys) > 1:
        raise VerificationError(
            f"{name} is archived more than once with different content ({', '.join(keys)}); "
            "the archive is inconsistent: keep the right one and remove the other"
        )
    return keys[0]


def fetch_wal(
    cfg: WalConfig, name: str, dest: Path, mirrors: Sequence[tuple[str, Storage]] = ()
) -> FetchResult:
    """Decode archived ``name`` into ``dest`` (atomically).

    With ``mirrors`` (label, storage), a file missing, unreadable or corrupt
    in the primary is fetched from the first mirror that has a good copy,
    and stderr names it (docs/object-storage.md); otherwise the primary's
    error stands.

    The PITR prefetcher does not come through here: it writes into its spool
    through a directory descriptor (see ``physical.prefetch``), with the
    same :func:`locate` and :func:`decode_checked`.
    """
    try:
        return _fetch_from(cfg, name, dest, None)
    except (NotFoundError, VerificationError, StorageError) as exc:
        if not mirrors:
            raise
        first = exc
    for label, storage in mirrors:
        try:
            result = _fetch_from(cfg, name, dest, storage)
        except (NotFoundError, VerificationError, StorageError):
            continue
        sys.stderr.write(
            f"seawall: warning: wal-fetch: {name} read from {label} (primary: {first})\n"
        )
        return result
    raise first


def _fetch_from(cfg: WalConfig, name: str, dest: Path, storage: Storage | None) -> FetchResult:
    located = locate(cfg, name, storage)  # a missing segment raises before anything is written
    tmp = dest.with_name(f".{dest.name}.seawall-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            result = decode_checked(cfg, located, fh)
        os.rename(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"wal-fetch: cannot write {dest}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


@dataclass(frozen=True)
class Located:
    name: str
    storage: Storage
    key: str
    obj: WalObject


def locate(cfg: WalConfig, name: str, storage: Storage | None = None) -> Located:
    """The archived file for WAL file ``name`` (NotFoundError if there is none),
    in ``storage`` (a mirror) or else the primary repository."""
    try:
        parse_wal_name(name)
    except ValueError:
        raise ConfigError(
            f"wal-fetch: {name!r} is not a WAL file name; restore_command must pass %f %p"
        ) from None
    if storage is None:
        storage = cfg.storage
    key = find_wal(storage, cfg.cluster, name)
    obj = parse_wal_key(key)
    assert obj is not None
    return Located(name, storage, key, obj)


def decode_checked(cfg: WalConfig, located: Located, fh: BinaryIO) -> FetchResult:
    """Decode a located archived file into the open file ``fh``, checking its sha256.

    The content must match the sha256 prefix its archive name records; on a
    mismatch (VerificationError) the caller must discard what was written.
    """
    storage, key, obj, name = located.storage, located.key, located.obj, located.name
    sink = _HashingFile(fh)
    decode_to(storage, key, sink, cfg.keys, compression=obj.compression)
    digest = sink.hash.hexdigest()
    if digest[:SHA_LEN] != obj.sha256_prefix:
        raise VerificationError(
            f"wal-fetch: {key} decodes to content with sha256 {digest[:12]}…, not the "
            f"{obj.sha256_prefix[:12]}… its name records: the archived file is corrupt"
        )
    return FetchResult(name, key, sink.count)
