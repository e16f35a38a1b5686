"""Per-series locks so that overlapping runs do not collide.

A CronJob that starts twice (a slow run, ``concurrencyPolicy`` misconfigured,
a human running the same command) must not write the same series twice or
prune while a backup is being written. We take an exclusive ``flock`` on
``<BACKUP_DIR>/.locks/<engine>.<kind>.<series>.lock``: the kernel drops it
when the process dies, so a kill -9 never leaves a stale lock behind. The
file's content (pid, command, start time) is informational; the exporter
reads it to show a run in progress and prune reads it to never delete what a
running job holds.

Without a local volume (an ``s3://`` repository) there is no filesystem
every run shares, so no flock: the same functions take the backend's
lease instead (:class:`~seawall.storage.base.Leasing`, S3 conditional
writes renewed by the holder; ADR 0012). The lock keys are the same
(``.locks/<engine>.<kind>.<series>.lock``); a backup hold is one lease
object per reader under ``.locks/holds/<backup>/`` (a bucket has no shared
locks), and a hold or lock whose lease has run out no longer counts, the
way the kernel drops the flock of a dead process.

Every function takes the repository (:class:`Storage`) or, for the local
volume's own tools and tests, its root directory as a ``Path``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from seawall.catalog.naming import decode_segment, encode_segment
from seawall.errors import ConfigError, LockedError, NotFoundError, StorageError
from seawall.storage.base import Leasing, Storage, repository_time, storage_error
from seawall.storage.volume import FILE_MODE, make_private_dirs

LOCK_DIR = ".locks"
#: lease of a lock or hold on a backend without a local volume; renewed every third of it
LEASE_SECONDS = 300.0
#: margin beyond the lease before a lock or hold object counts as expired (a renewal
#: that is late by retries); judged by the repository's clock, never this host's
#: (storage.base.repository_time: S3's ``Date``, as ``LastModified`` is the server's)
_LEASE_SLACK = 60.0

#: the repository, or a local volume's root directory
Where = Storage | Path

_log = logging.getLogger(__name__)


def volume_root(where: Where) -> Path | None:
    """The directory flock works in, or None when the repository has no local volume."""
    if isinstance(where, Path):
        return where
    vol = where.local_volume()
    return vol.root if vol is not None else None


def _leasing(storage: Storage) -> Leasing:
    if isinstance(storage, Leasing):
        return storage
    raise ConfigError(
        f"repository {storage.describe()} offers neither a local volume (flock) nor leases: "
        "seawall cannot lock a series there; use a local path or s3:// for BACKUP_DIR"
    )


def leased_lock(
    storage: Storage, name: str, *, timeout: float, command: str
) -> AbstractContextManager[None]:
    """The lease on ``.locks/<name>`` (for locks other than series locks, e.g. the drill's)."""
    return _leasing(storage).lease(
        f"{LOCK_DIR}/{name}", timeout=timeout, command=command, lease_seconds=LEASE_SECONDS
    )


def _lease_fresh(storage: Storage, key: str) -> bool:
    """Whether the lease object ``key`` exists and has not run out."""
    try:
        info = storage.stat(key)
    except NotFoundError:
        return False
    return info.mtime + LEASE_SECONDS + _LEASE_SLACK > repository_time(storage)


def _lock_key(engine: str, kind: str, series: str) -> str:
    return f"{LOCK_DIR}/{engine}.{kind}.{encode_segment(series)}.lock"


def _hold_prefix(engine: str, kind: str, series: str, backup_id: str) -> str:
    return f"{LOCK_DIR}/holds/{engine}.{kind}.{encode_segment(series)}.{backup_id}"


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
    where: Where,
    engine: str,
    kind: str,
    series: str,
    *,
    timeout: float,
    command: str,
    backup_id: str | None = None,
) -> Iterator[None]:
    """Hold the series lock; wait up to ``timeout`` seconds, then LockedError.

    flock on a local volume; the backend's lease otherwise (see the module doc).
    """
    backup_dir = volume_root(where)
    if backup_dir is None:
        assert not isinstance(where, Path)
        with _leasing(where).lease(
            _lock_key(engine, kind, series),
            timeout=timeout,
            command=command,
            lease_seconds=LEASE_SECONDS,
        ):
            yield
        return
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


def is_series_locked(where: Where, engine: str, kind: str, series: str) -> bool:
    """Whether a run holds the series lock right now (probe, never blocks)."""
    backup_dir = volume_root(where)
    if backup_dir is None:
        assert not isinstance(where, Path)
        return _lease_fresh(where, _lock_key(engine, kind, series))
    return is_held(lock_path(backup_dir, engine, kind, series))


def _list_leased_locks(storage: Storage) -> Iterator[LockInfo]:
    now: float | None = None
    for obj in storage.list(LOCK_DIR):
        name = obj.key[len(LOCK_DIR) + 1 :]
        if "/" in name or not name.endswith(".lock"):
            continue
        parts = name[: -len(".lock")].split(".", 2)
        if len(parts) != 3:
            continue
        if now is None:  # after the listing's first answer: the server's clock is known
            now = repository_time(storage)
        held = obj.mtime + LEASE_SECONDS + _LEASE_SLACK > now
        info: dict[str, object] = {}
        if held:
            try:
                loaded = json.loads(storage.read_bytes(obj.key) or b"{}")
            except (NotFoundError, ValueError):
                loaded = {}
            info = loaded if isinstance(loaded, dict) else {}
        yield _lock_info(parts, held, info, empty_command_known=False)


def _lock_info(
    parts: list[str], held: bool, info: Mapping[str, object], *, empty_command_known: bool
) -> LockInfo:
    """A LockInfo from the name's (engine, kind, encoded series) and the holder's details.

    ``empty_command_known``: whether a ``command`` that is present but empty
    is reported as ``""`` (a flock file: its holder writes the details just
    after flock succeeds, so *present* means written, and readers tell "held,
    details unknown" by ``command is None``) or as None (a lease: written
    with its details in one PUT, where an empty command means none given).
    """
    pid = info.get("pid")
    started = info.get("started_at")
    if empty_command_known:
        command = str(info["command"]) if "command" in info else None
    else:
        command = str(info["command"]) if info.get("command") else None
    return LockInfo(
        engine=parts[0],
        kind=parts[1],
        series=decode_segment(parts[2]),
        pid=pid if isinstance(pid, int) else None,
        command=command,
        started_at=datetime.fromisoformat(started) if isinstance(started, str) else None,
        held=held,
        backup_id=str(info["backup_id"]) if info.get("backup_id") else None,
    )


def list_locks(where: Where) -> Iterator[LockInfo]:
    """Every series lock with whether it is held now (read-only).

    A lock taken a moment ago may be held with no pid/command/start yet:
    its holder writes them just after flock succeeds (never before: until
    then the file belongs to the previous holder). Readers treat that as
    "held, details unknown" (the exporter skips it until the next scrape).
    """
    backup_dir = volume_root(where)
    if backup_dir is None:
        assert not isinstance(where, Path)
        yield from _list_leased_locks(where)
        return
    directory = backup_dir / LOCK_DIR
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.lock")):
        parts = path.name[: -len(".lock")].split(".", 2)
        if len(parts) != 3:
            continue
        held = is_held(path)
        info = _read_info(path) if held else {}
        yield _lock_info(parts, held, info, empty_command_known=True)


def hold_path(backup_dir: Path, engine: str, kind: str, series: str, backup_id: str) -> Path:
    name = f"hold.{engine}.{kind}.{encode_segment(series)}.{backup_id}.lock"
    return backup_dir / LOCK_DIR / name


@contextmanager
def _leased_hold(
    storage: Storage, engine: str, kind: str, series: str, backup_id: str
) -> Iterator[None]:
    """A hold on a bucket: one lease object of this reader's own under the backup's hold prefix."""
    key = f"{_hold_prefix(engine, kind, series, backup_id)}/{os.urandom(8).hex()}"
    with ExitStack() as stack:
        try:
            stack.enter_context(
                _leasing(storage).lease(key, timeout=0, command="hold", lease_seconds=LEASE_SECONDS)
            )
        except StorageError as exc:
            # A read-only key (a restore host's): reading is still right, but a
            # prune elsewhere could delete the backup meanwhile: say so, go on.
            _log.warning(
                "could not record a hold on backup %s (%s); reading it anyway", backup_id, exc
            )
        yield


@contextmanager
def backup_hold(
    where: Where, engine: str, kind: str, series: str, backup_id: str
) -> Iterator[None]:
    """Hold one backup (shared lock) while it is being restored or verified.

    Several readers may hold it at once; ``prune`` probes it exclusively and
    keeps the backup ("locked by a running job") while anybody holds it.
    """
    backup_dir = volume_root(where)
    if backup_dir is None:
        assert not isinstance(where, Path)
        with _leased_hold(where, engine, kind, series, backup_id):
            yield
        return
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


def is_backup_held(where: Where, engine: str, kind: str, series: str, backup_id: str) -> bool:
    backup_dir = volume_root(where)
    if backup_dir is None:
        assert not isinstance(where, Path)
        prefix = _hold_prefix(engine, kind, series, backup_id)
        holds = list(where.list(prefix))
        now = repository_time(where) if holds else 0.0
        return any(o.mtime + LEASE_SECONDS + _LEASE_SLACK > now for o in holds)
    # Plain strings: prune probes every backup of the catalog (10,000s).
    name = f"hold.{engine}.{kind}.{encode_segment(series)}.{backup_id}.lock"
    return is_held(os.path.join(backup_dir, LOCK_DIR, name))
