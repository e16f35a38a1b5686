"""Typed wrapper of ``pg_verifybackup``."""

from __future__ import annotations

from pathlib import Path

from seawall.postgres.tools.base import child_env, run_tool


def verifybackup(
    binary: Path, backup_dir: Path, *, wal_dir: Path | None = None, parse_wal: bool = True
) -> tuple[bool, str]:
    """Run pg_verifybackup; (ok, its output) — never raises on a failed check."""
    argv: list[str | Path] = [binary]
    if wal_dir is not None:
        argv += ["-w", wal_dir]
    if not parse_wal:
        argv.append("-n")
    argv.append(backup_dir)
    res = run_tool(argv, env=child_env(), check=False, timeout=3600)
    text = (res.stdout + res.stderr).decode(errors="replace").strip()
    return res.returncode == 0, text
