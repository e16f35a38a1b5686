"""The backup-run lifecycle, written once for every engine.

Every backup (a logical dump, a base backup, a Qdrant collection or
full-storage snapshot) goes through the same steps, in this order, and
for the same reasons:

1. take the series lock: two overlapping runs (a CronJob that starts
   twice, a human beside it) must not write the same series or prune
   while a backup is being written;
2. start the run's manifest (status ``running``, the clock starts once
   the lock is held, so waiting for it is not counted as backup time);
3. let the engine store its artifacts into that manifest (``work``);
4. on any exception (also Ctrl-C / SIGTERM): remove what the run stored
   and record the failure, or a *rejected* run when the target does not
   exist and was never backed up (:mod:`seawall.catalog.runs`,
   :mod:`seawall.catalog.rejected`), then re-raise;
5. on success: write the final manifest, last and atomically;
6. still inside the lock, hand the manifest to ``after`` (the application
   layer's post-backup verify and prune, :mod:`seawall.app.backup`): the
   catalog does not know what comes after a backup, and an engine does not
   import retention.

Engines build the manifest (their own fields), call :func:`backup_run`
and return the manifest it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from seawall.catalog.locks import Where, series_lock
from seawall.catalog.models import Manifest, utcnow
from seawall.catalog.runs import record_failure
from seawall.catalog.store import Catalog
from seawall.errors import SeawallError
from seawall.log import get_logger

log = get_logger("catalog.run")

#: What runs right after a successful backup, inside its series lock: the
#: application layer's verify and retention (``seawall.app.backup``).
AfterBackup = Callable[[Manifest], None]

#: Given the exception a run failed with (already recorded), the one to raise
#: instead (``None``: re-raise it unchanged).
Reraise = Callable[[BaseException], BaseException | None]


def backup_run(
    catalog: Catalog,
    where: Where,
    manifest: Manifest,
    work: Callable[[Manifest], None],
    *,
    timeout: float,
    command: str,
    after: AfterBackup | None = None,
    reraise: Reraise | None = None,
) -> Manifest:
    """Run one backup's lifecycle around ``work``; returns the successful manifest.

    ``work`` fills ``manifest`` (artifacts, engine facts); a manifest whose
    artifacts are recorded as soon as they are stored is cleaned up whole if
    a later step fails. Errors from ``after`` are the caller's: the backup
    itself is already recorded as successful by then.
    """
    with series_lock(
        where,
        manifest.engine,
        manifest.kind,
        manifest.series,
        timeout=timeout,
        command=command,
        backup_id=manifest.id,
    ):
        manifest.status = "running"
        manifest.started_at = utcnow()
        t0 = time.monotonic()
        try:
            work(manifest)
        except BaseException as exc:
            record_failure(catalog, manifest, exc, time.monotonic() - t0)
            replacement = reraise(exc) if reraise is not None else None
            if replacement is not None:
                raise replacement from exc
            raise
        manifest.status = "success"
        manifest.finished_at = utcnow()
        manifest.duration_seconds = round(time.monotonic() - t0, 3)
        catalog.write(manifest)
        log.info(
            "backup stored",
            extra={
                "engine": manifest.engine,
                "kind": manifest.kind,
                "series": manifest.series,
                "backup_id": manifest.id,
                "bytes": manifest.stored_size,
            },
        )
        if after is not None:
            after(manifest)
    return manifest


def record_failed_run(
    catalog: Catalog, where: Where, manifest: Manifest, exc: BaseException, *, command: str
) -> bool:
    """Record a run that failed before it could start (its server unreachable).

    Every attempted run leaves a record, or a server that is down would
    record nothing and the failure alert would never fire. The series lock
    is tried without waiting: a run in progress records its own outcome.
    Returns whether the failure was recorded.
    """
    try:
        with series_lock(
            where,
            manifest.engine,
            manifest.kind,
            manifest.series,
            timeout=0,
            command=command,
            backup_id=manifest.id,
        ):
            record_failure(catalog, manifest, exc)
    except SeawallError as lock_exc:
        log.warning("run not recorded", extra={"series": manifest.series, "error": str(lock_exc)})
        return False
    return True
