"""Typed wrapper of ``pg_basebackup`` (tar to stdout, no WAL).

``-D - -Ft`` writes base.tar to stdout with the ``backup_manifest`` injected
as its last member (PostgreSQL 13+); WAL cannot be streamed in that mode
(``-X none``), which is fine: the backup's WAL comes from the archive that
``wal-push`` fills, and verification checks it is there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from seawall.postgres.tools.base import ConnParams, spawn_tool


def basebackup_argv(binary: Path, label: str, *, fast_checkpoint: bool = True) -> list[str]:
    argv = [
        str(binary),
        "-D",
        "-",
        "-Ft",
        "-X",
        "none",
        "--no-password",
        "--label",
        label,
        "--manifest-checksums",
        "CRC32C",
    ]
    if fast_checkpoint:
        argv += ["--checkpoint", "fast"]
    return argv


def spawn_basebackup(
    binary: Path, conn: ConnParams, label: str, *, fast_checkpoint: bool = True
) -> subprocess.Popen[bytes]:
    """Start pg_basebackup streaming the tar on stdout (stderr captured)."""
    return spawn_tool(
        basebackup_argv(binary, label, fast_checkpoint=fast_checkpoint), env=conn.env()
    )
