"""The drill use case: every configured target, one after another.

Order: leftovers of earlier drills are removed first (a drill killed with
-9 leaves scratch objects named after its id: databases, collections, PITR
data directories with a server still running on them), then the PostgreSQL
logical backups and the Qdrant snapshots are drilled, PITR last (the
slowest, and the one that needs the most disk), when base backups of
PG_CLUSTER_NAME exist. One drill at a time: a lock in the
repository serialises them, so a drill never removes another running
drill's scratch objects as leftovers.

Every target's result is recorded in the catalog (``drills/…``, read by
the exporter) whether it passed or not; a failed target does not stop the
others.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from seawall.catalog.locks import LOCK_DIR, flock_exclusive, leased_lock, open_lock, volume_root
from seawall.catalog.models import Manifest, utcnow
from seawall.catalog.naming import new_backup_id
from seawall.context import Context
from seawall.drill.model import DrillResult, TargetResult
from seawall.drill.records import write_records
from seawall.errors import SeawallError
from seawall.log import get_logger
from seawall.storage.base import Storage

log = get_logger("drill")

QDRANT_KINDS = ("snapshot", "shard-snapshot")

#: (connection parameters, scratch database) -> None; see seawall.postgres.drill
BeforeChecks = Callable[..., None]


@contextmanager
def drill_lock(where: Storage | Path, timeout: float, drill_id: str) -> Iterator[None]:
    """One drill at a time (``.locks/drill.lock``, flock: gone when the process dies;
    the backend's lease on a repository without a local volume, ADR 0012).

    Not a series lock: the exporter reports held series locks as backups in
    progress, and a drill is not a backup.
    """
    backup_dir = volume_root(where)
    if backup_dir is None:
        assert not isinstance(where, Path)
        with leased_lock(where, "drill.lock", timeout=timeout, command=f"drill {drill_id}"):
            yield
        return
    path = backup_dir / LOCK_DIR / "drill.lock"
    fd = open_lock(path)
    try:
        flock_exclusive(
            fd,
            path,
            timeout,
            lambda holder: (
                f"another drill is running ({json.dumps(holder) if holder else 'unknown'}); "
                "wait for it to finish (the lock is released automatically if that process dies)"
            ),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "drill": drill_id}).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _newest(ctx: Context, engine: str, kind: str, series: str | None = None) -> list[Manifest]:
    """Newest successful backup of each series of ``engine``/``kind``."""
    newest: dict[str, Manifest] = {}
    for m in ctx.catalog.scan(engine, kind, series).manifests:  # newest first
        if m.ok:
            newest.setdefault(m.series, m)
    return [newest[k] for k in sorted(newest)]


def _missing(result: DrillResult, engine: str, kind: str, series: str, error: str) -> None:
    """Record a target that has nothing to drill as a failed target.

    A configured database or collection without a backup is a gap the
    drill must report (and the exporter alert on), not skip silently.
    """
    t = TargetResult(engine, kind, series, started_at=utcnow())
    t.error = error
    t.finished_at = utcnow()
    result.targets.append(t)


def _logical_targets(ctx: Context, result: DrillResult, before_checks: BeforeChecks | None) -> None:
    from seawall.postgres.drill import drill_logical

    has_base = bool(_newest(ctx, "postgresql", "base"))
    for db in ctx.settings.target_databases():
        found = _newest(ctx, "postgresql", "logical", db)
        if not found:
            if has_base:
                continue  # this database is covered by the PITR drill
            _missing(
                result,
                "postgresql",
                "logical",
                db,
                f"no successful logical backup of {db!r} in {ctx.storage.describe()}; "
                "run `seawall postgres backup` first",
            )
            continue
        log.info("drilling the logical backup", extra={"database": db, "backup": found[0].id})
        result.targets.append(drill_logical(ctx, found[0], result.id, before_checks=before_checks))


def _qdrant_targets(ctx: Context, result: DrillResult) -> None:
    from seawall.qdrant.drill import drill_collection

    wanted = set(ctx.settings.qdrant_collections)
    newest: dict[str, Manifest] = {}
    for kind in QDRANT_KINDS:
        for m in _newest(ctx, "qdrant", kind):
            if wanted and m.series not in wanted:
                continue
            if m.series not in newest or (m.time, m.id) > (
                newest[m.series].time,
                newest[m.series].id,
            ):
                newest[m.series] = m
    if not newest:
        _missing(
            result,
            "qdrant",
            "snapshot",
            "*",
            f"no successful Qdrant snapshot in {ctx.storage.describe()}; "
            "run `seawall qdrant backup` first",
        )
        return
    for name in sorted(newest):
        log.info("drilling the snapshot", extra={"collection": name, "backup": newest[name].id})
        result.targets.append(drill_collection(ctx, newest[name], result.id))


def _remove_leftovers(ctx: Context, result: DrillResult, pg: bool, qd: bool) -> None:
    if pg:
        from seawall.postgres.drill import remove_leftovers as pg_leftovers, scratch_context
        from seawall.postgres.tools.base import ConnParams

        try:
            result.leftovers_removed += pg_leftovers(
                ConnParams.from_settings(scratch_context(ctx).settings), result.id
            )
        except SeawallError as exc:
            result.notes.append(f"could not look for drill leftovers on PostgreSQL: {exc}")
        from seawall.postgres.pitr_drill import remove_leftovers as pitr_leftovers

        result.leftovers_removed += pitr_leftovers(ctx, result.id)
    if qd:
        from seawall.qdrant.drill import remove_leftovers as qd_leftovers

        try:
            result.leftovers_removed += qd_leftovers(ctx, result.id)
        except SeawallError as exc:
            result.notes.append(f"could not look for drill leftovers on Qdrant: {exc}")


def run_drill(
    ctx: Context,
    *,
    drill_id: str | None = None,
    before_checks: BeforeChecks | None = None,
) -> DrillResult:
    """Drill every configured target and record the results in the catalog.

    ``before_checks`` is handed to the PostgreSQL drills (tests damage the
    restored copy through it); ``drill_id`` is chosen by tests to provoke
    a name collision.
    """
    s = ctx.settings
    result = DrillResult(
        id=drill_id or new_backup_id(),
        started_at=utcnow(),
        rto_objective=s.drill_rto_objective.total_seconds(),
        rpo_objective=s.drill_rpo_objective.total_seconds(),
    )
    engines = s.active_engines()
    pg, qd = "postgres" in engines, "qdrant" in engines
    with drill_lock(ctx.storage, s.lock_timeout, result.id):
        _remove_leftovers(ctx, result, pg, qd)
        if pg:
            _logical_targets(ctx, result, before_checks)
        if qd:
            _qdrant_targets(ctx, result)
        if pg and _newest(ctx, "postgresql", "base", s.pg_cluster_name):
            from seawall.postgres.pitr_drill import drill_pitr

            log.info("drilling point-in-time recovery", extra={"cluster": s.pg_cluster_name})
            result.targets.append(drill_pitr(ctx, result.id, before_checks=before_checks))
        result.finished_at = utcnow()
        write_records(ctx.storage, result)
    return result
