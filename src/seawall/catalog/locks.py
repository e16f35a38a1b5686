"""Per-series locks so that overlapping runs do not collide.

A CronJob that starts twice (a slow run, ``concurrencyPolicy`` misconfigured,
a human running the same command) must not write the same series twice or
prune while a backup is being written. We take an exclusive ``flock`` on
``<BACKUP_DIR>/.locks/<engine>.<kind>.<series>.lock``: the kernel drops it
when the process dies, so a kill -9 never leaves a stale lock behind. The
file's content (pid, command, start time) is informational; the exporter
reads it to show a run in progress and prune reads it to never delete what a
running job holds.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from seawall.catalog.naming import decode_segment, encode_segment
from seawall.errors import LockedError, StorageError
from seawall.storage.base import storage_error
from seawall.storage.local import FILE_MODE, make_private_dirs

LOCK_DIR = ".locks"


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or last held) a series lock."""

    engine: str
    kind: str
    series: str
    pid: int | None
    command: str | None
    started_at: datetime | None
    held: bool
    backup_id: str | None = None


def lock_path(backup_dir: Path, engine: str, kind: str, series: str) -> Path:
    name = f"{engine}.{kind}.{encode_segment(series)}.lock"
    return backup_dir / LOCK_DIR / name


@contextmanager
def series_lock(
    backup_dir: Path,
    engine: str,
    kind: str,
    series: str,
    *,
    timeout: float,
    command: str,
    backup_id: str | None = None,
) -> Iterator[None]:
    """Hold the series lock; wait up to ``timeout`` seconds, then LockedError."""
    path = lock_path(backup_dir, engine, kind, series)
    fd = open_lock(path)
    try:

        def refusal(holder: dict[str, object]) -> str:
            who = (
                f" (pid {holder.get('pid')}, {holder.get('command')}, since {holder.get('started_at')})"
                if holder
                else ""
            )
            return (
                f"another seawall run holds the lock of {engine} {kind} {series!r}{who}; "
                "wait for it to finish (it is released automatically if that process dies)"
            )

        flock_exclusive(fd, path, timeout, refusal)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started_at": datetime.now(UTC).isoformat(),
            "backup_id": backup_id,
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as exc:  # a full volume: the first write of the run fails here
            raise storage_error(exc, f"the lock file {path}") from exc
        try:
            yield
        finally:
            try:  # noqa: SIM105 - the run's own outcome matters more than the informational content
                os.ftruncate(fd, 0)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def flock_exclusive(
    fd: int, path: Path, timeout: float, refusal: Callable[[dict[str, object]], str]
) -> None:
    """Take an exclusive flock on ``fd``, waiting up to ``timeout`` seconds.

    Polls with LOCK_NB instead of blocking so the wait has a deadline (a
    blocking flock cannot time out). When the deadline passes, LockedError
    carries ``refusal(holder)``: the holder's informational JSON from
    ``path`` ({} when unreadable), so each lock words its own one-line error.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockedError(refusal(_read_info(path))) from None
            time.sleep(0.1)


def open_lock(path: Path) -> int:
    """Open (create, 0600 in a 0700 directory) a lock file; StorageError when impossible.

    This is the first write of every run, so a read-only, full or
    unwritable volume, or a BACKUP_DIR that is a regular file, is met here
    and must surface as the one-line storage error (exit 7).
    """
    try:
        make_private_dirs(path.parent)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise storage_error(exc, f"the lock file {path}") from exc


def _read_info(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_held(path: Path | str) -> bool:
    """Whether some process holds the lock right now (probe, never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        # Exclusive probe: fails while anybody holds it, shared or exclusive.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def list_locks(backup_dir: Path) -> Iterator[LockInfo]:
    """Every series lock file with whether it is held now (read-only)."""
    directory = backup_dir / LOCK_DIR
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.lock")):
        parts = path.name[: -len(".lock")].split(".", 2)
        if len(parts) != 3:
            continue
        held = is_held(path)
        info = _read_info(path) if held else {}
        started = info.get("started_at")
        pid = info.get("pid")
        yield LockInfo(
            engine=parts[0],
            kind=parts[1],
            series=decode_segment(parts[2]),
            pid=pid if isinstance(pid, int) else None,
            command=str(info["command"]) if "command" in info else None,
            started_at=datetime.fromisoformat(started) if isinstance(started, str) else None,
            held=held,
            backup_id=str(info["backup_id"]) if info.get("backup_id") else None,
        )


def hold_path(backup_dir: Path, engine: str, kind: str, series: str, backup_id: str) -> Path:
    name = f"hold.{engine}.{kind}.{encode_segment(series)}.{backup_id}.lock"
    return backup_dir / LOCK_DIR / name


@contextmanager
def backup_hold(
    backup_dir: Path, engine: str, kind: str, series: str, backup_id: str
) -> Iterator[None]:
    """Hold one backup (shared lock) while it is being restored or verified.

    Several readers may hold it at once; ``prune`` probes it exclusively and
    keeps the backup ("locked by a running job") while anybody holds it.
    """
    path = hold_path(backup_dir, engine, kind, series, backup_id)
    try:
        fd = open_lock(path)
    except StorageError as exc:
        if not (isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EROFS):
            raise
        fd = -1
    if fd < 0:
        # A read-only volume (a restore from a snapshot mounted ro): no
        # prune can delete anything there either, so no hold is needed.
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        try:
            if not is_held(path):
                path.unlink()
        except OSError:
            pass


def is_backup_held(backup_dir: Path, engine: str, kind: str, series: str, backup_id: str) -> bool:
    # Plain strings: prune probes every backup of the catalog (10,000s).
    name = f"hold.{engine}.{kind}.{encode_segment(series)}.{backup_id}.lock"
    return is_held(os.path.join(backup_dir, LOCK_DIR, name))
