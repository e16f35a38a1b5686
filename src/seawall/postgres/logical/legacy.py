"""The operators' old dumps, and other files without a manifest.

Before seawall, backups were plain SQL: ``aidb-full-YYYYMMDD-HHMMSS.sql.gz``
(gzip or zstd), optionally encrypted with ``openssl enc -aes-256-cbc
-pbkdf2`` under ``ENCRYPTION_KEY``. They must stay restorable after the
switch. The pipeline detects the decode chain from the bytes; this module
checks that what comes out is a PostgreSQL dump (a custom-format archive or
a plain SQL script) and replays plain scripts with psql.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from seawall.context import Context
from seawall.errors import VerificationError
from seawall.pipeline.decode import decode_to
from seawall.postgres.logical import server
from seawall.postgres.logical.select import BackupSource
from seawall.postgres.tools.base import ConnParams
from seawall.postgres.tools.pg_restore import ArchiveLister, PgRestore
from seawall.postgres.tools.psql import Psql

PGDMP_MAGIC = b"PGDMP"


class _Sniffer:
    """Keeps the head of the decoded stream and forwards it to pg_restore --list."""

    def __init__(self, lister: ArchiveLister) -> None:
        self.head = b""
        self.size = 0
        self.lister = lister

    def write(self, data: bytes) -> int:
        if len(self.head) < 4096:
            self.head += data[: 4096 - len(self.head)]
        self.size += len(data)
        return self.lister.write(data)


def looks_like_sql(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace")
    return "PostgreSQL database dump" in text or bool(
        re.search(r"^\s*(--|SET |CREATE |SELECT |\\connect)", text, re.M)
    )


def check_foreign(
    ctx: Context, source: BackupSource, progress: Callable[[int], None] | None = None
) -> list[str]:
    """Decode a file without manifest completely and check it is a dump."""
    assert source.foreign_key is not None
    pg_restore = PgRestore(
        server.tool_path(ctx.settings, "pg_restore", None), ConnParams.from_settings(ctx.settings)
    )
    sniff = _Sniffer(pg_restore.lister())
    try:
        result = decode_to(source.storage, source.foreign_key, sniff, ctx.keys, progress=progress)
    finally:
        code, _, err = sniff.lister.finish()
    chain = f"{result.encryption or 'not encrypted'}, {result.compression or 'uncompressed'}"
    if sniff.head.startswith(PGDMP_MAGIC):
        if code != 0:
            lines = err.strip().splitlines()
            raise VerificationError(
                f"{source.label}: pg_restore --list cannot read it: {lines[-1] if lines else code}"
            )
        return [f"{source.label}: decoded ({chain}), custom-format archive, pg_restore --list ok"]
    if not looks_like_sql(sniff.head):
        raise VerificationError(
            f"{source.label}: decodes ({chain}) but is neither a pg_dump archive nor a SQL script"
        )
    return [f"{source.label}: decoded ({chain}), plain SQL dump of {sniff.size} bytes"]


def restore_plain_sql(ctx: Context, path: Path, dbname: str, major: int | None) -> None:
    """Replay a plain SQL dump into ``dbname`` with psql, stopping at the first error."""
    psql = Psql(
        server.tool_path(ctx.settings, "psql", major), ConnParams.from_settings(ctx.settings)
    )
    psql.run_file(path, dbname, stop_on_error=True)
