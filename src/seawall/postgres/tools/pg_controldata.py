"""Typed wrapper of ``pg_controldata`` (read a stopped or running data dir)."""

from __future__ import annotations

from pathlib import Path

from seawall.postgres.tools.base import child_env, run_tool


def controldata(binary: Path, data_dir: Path) -> dict[str, str]:
    """``pg_controldata DIR`` as a dict of its ``key: value`` lines."""
    env = child_env()
    env["LC_ALL"] = "C"
    res = run_tool([binary, data_dir], env=env, what="pg_controldata")
    out: dict[str, str] = {}
    for line in res.stdout.decode(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
