"""The lean ``wal-fetch`` from object storage (``BACKUP_DIR=s3://bucket/prefix``).

:mod:`seawall.postgres.wal.fastfetch` for an ``s3://`` repository: the
archived versions of ``%f`` are listed (one ``LIST``), the one version is
read (one ``GET``) with the standard-library client
:mod:`seawall.storage.s3.lean`, then decrypted, decompressed, checked
against the sha256 in its name and renamed into ``%p`` exactly as the local
lean fetch does (the same functions). No boto3, Typer or pydantic.

Not here (yet): the read-ahead (``WAL_READ_AHEAD``), whose background
reader reads the local archive only; over S3 each ``wal-fetch`` reads its
own segment.

Outcomes: :class:`~seawall.postgres.wal.fastfetch.Missing` (not archived,
and the archive exists: a quiet exit 1); :class:`~seawall.postgres.wal.lean.Fallback`
(``%p`` untouched; the general path decides and explains: several
versions, a corrupt file, a wrong key, gzip, a passphrase, credentials from
a profile or a web identity, no WAL archive at all);
:class:`seawall.storage.s3.leanconf.S3Error` (the server failed or refused:
one loud line, never the quiet exit 1 that would end a recovery early).
"""

from __future__ import annotations

import os

from seawall.postgres.wal.fastfetch import Missing, decode_bytes, options, write_checked
from seawall.postgres.wal.lean import Fallback
from seawall.walcore.layout import (
    ARCHIVE_INFO,
    WAL_ROOT,
    is_history_name,
    is_segment_name,
    is_version_of,
    subdir,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: seconds a fetch keeps retrying an unreachable server (SEAWALL_WAL_S3_DEADLINE)
DEFAULT_DEADLINE = 30.0


def fetch(name: str, dest: str, env: Mapping[str, str] | None = None) -> str:
    """Restore WAL file ``name`` from S3 into ``dest``; returns the object's key."""
    from seawall.storage.s3.lean import Client
    from seawall.storage.s3.leanconf import NeedsGeneral, config_from_env

    opts = options(env)
    try:
        config = config_from_env(opts.raw.backup_dir, env)
    except NeedsGeneral as exc:
        raise Fallback(str(exc)) from exc
    source = os.environ if env is None else env
    try:
        deadline = float(source.get("SEAWALL_WAL_S3_DEADLINE") or DEFAULT_DEADLINE)
    except ValueError as exc:
        raise Fallback("SEAWALL_WAL_S3_DEADLINE is not a number") from exc
    archive = f"{WAL_ROOT}/{opts.raw.cluster}"
    if not (is_segment_name(name) or is_history_name(name)):
        raise Fallback("not a segment or history file name")
    directory = f"{archive}/{subdir(name)}"
    client = Client(config, deadline=deadline)
    try:
        prefix = f"{directory}/{name}-"
        start = len(directory) + 1
        found = [
            entry.key
            for entry in client.list(prefix)
            if entry.key.startswith(prefix) and is_version_of(entry.key[start:], name)
        ]
        if not found:
            if client.head(f"{archive}/{ARCHIVE_INFO}") is None:
                # no WAL archive at all (a wrong bucket prefix or cluster name):
                # loudly, not the quiet "not archived" that ends recovery early
                raise Fallback("no WAL archive")
            raise Missing(name)
        if len(found) > 1:
            raise Fallback("archived more than once")
        data = client.get(found[0])
        if data is None:  # deleted between the listing and the read (prune)
            raise Fallback("vanished")
    finally:
        client.close()
    raw, sha = decode_bytes(data, found[0].rsplit("/", 1)[-1], opts.identities, history_ok=True)
    try:
        write_checked(raw, sha, dest)
    except OSError as exc:
        raise Fallback(f"cannot write {dest}") from exc
    return found[0]
