"""Shared pieces of the asynchronous wal-push tests (ADR 0017): a pg_wal as PostgreSQL
keeps it (segments + ``archive_status/*.ready``) and wal-push run as its archiver does."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from seawall.postgres.wal.pushahead import SPOOL
from tests.conftest import SEAWALL
from tests.integration.wal.test_wal_fast_imports import segment

PUSHER = "seawall.runner.wal_pusher"


def name_of(segno: int, timeline: int = 1) -> str:
    return f"{timeline:08X}{0:08X}{segno:08X}"


def ready(root: Path, names: list[str]) -> dict[str, bytes]:
    """Segments ``names`` (random content) in ``root/pg_wal``, each marked ``.ready``."""
    pg_wal = root / "pg_wal"
    (pg_wal / "archive_status").mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        out[name] = segment(pg_wal, name).read_bytes()
        (pg_wal / "archive_status" / f"{name}.ready").touch()
    return out


def wal_push(root: Path, name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``wal-push pg_wal/NAME`` from the data directory, as PostgreSQL's archiver runs it."""
    return subprocess.run(
        [SEAWALL, "postgres", "wal-push", f"pg_wal/{name}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def done(root: Path, name: str) -> None:
    """PostgreSQL's ``.ready`` -> ``.done`` after a successful archive_command."""
    status = root / "pg_wal" / "archive_status"
    os.rename(status / f"{name}.ready", status / f"{name}.done")


def spool(root: Path) -> Path:
    return root / "pg_wal" / SPOOL


def markers(root: Path) -> list[str]:
    path = spool(root)
    return sorted(e for e in os.listdir(path) if not e.startswith(".")) if path.is_dir() else []


def pusher_pids(root: Path) -> list[int]:
    """Pids of the pushers working on ``root``'s pg_wal (from /proc)."""
    want = str(spool(root)).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if PUSHER.encode() in argv and want in argv:
            pids.append(int(entry))
    return pids


def wait_for(cond: Callable[[], bool], timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def env_without_seawall(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEAWALL_", "ENCRYPTION", "AWS_", "BACKUP_DIR", "WAL_PUSH"))
    }
    env.update(extra)
    return env
