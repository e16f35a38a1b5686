"""A backup and what comes right after it: verify, then retention.

The engines store a backup and return its manifest
(:func:`seawall.catalog.run.backup_run` is their lifecycle). What a
*command* does after that is decided here, above the engines:

- verify the new backup (``--verify`` / ``VERIFY_BACKUP``), at the strongest
  level the keys on this host allow: a configured identity that does not
  open the backup says nothing about the backup, so the stored bytes are
  checked instead;
- apply retention to the series (``PRUNE_AFTER_BACKUP``).

Both run inside the backup's series lock (the engine calls them through the
``after`` hook of :func:`~seawall.catalog.run.backup_run`), so no other run
of the series starts between the backup and its retention.

What a failed verification does differs by engine and is kept as it was:
a logical backup reports it (``BackupResult.verified``) and keeps its
manifest successful with the failed verification recorded; a base backup
and a Qdrant backup are marked failed and the command fails. Likewise a
retention error fails ``postgres backup`` but is logged as a warning after
a base backup or a Qdrant backup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seawall.catalog.models import Manifest, VerificationLevel
from seawall.context import Context
from seawall.errors import BackupFailedError, DecryptionError, SeawallError, VerificationError
from seawall.log import get_logger

if TYPE_CHECKING:
    from seawall.qdrant.backup import BackupRun
    from seawall.qdrant.store import ProgressFactory

# Each engine is imported by the function that runs it: `seawall postgres
# backup` must not pay for the Qdrant client (httpx) or the other way round.

log = get_logger("app.backup")


@dataclass
class BackupResult:
    """A logical backup and its verification right after."""

    manifest: Manifest
    verified: bool | None
    #: how far the verification right after the backup went (None: not verified)
    level: VerificationLevel | None = None


def _wanted(ctx: Context, verify: bool | None) -> bool:
    return ctx.settings.verify_backup if verify is None else verify


def prune_after(ctx: Context, manifest: Manifest, *, warn: bool) -> None:
    """Retention for the backup's series (PRUNE_AFTER_BACKUP), inside its lock.

    ``warn``: a retention error is logged instead of failing the command
    (the backup itself is stored and recorded either way).
    """
    if not ctx.settings.prune_after_backup:
        return
    from seawall.app.prune import prune_series

    try:
        prune_series(ctx, manifest.engine, manifest.kind, manifest.series)
    except SeawallError as exc:
        if not warn:
            raise
        log.warning(
            "retention after the backup failed",
            extra={"series": manifest.series, "error": str(exc)},
        )


# --- PostgreSQL logical -------------------------------------------------------


class _AfterLogical:
    """Verify (the result is reported, not raised) and prune a logical backup."""

    def __init__(self, ctx: Context, verify: bool | None) -> None:
        self.ctx = ctx
        self.verify = verify
        self.verified: bool | None = None
        self.level: VerificationLevel | None = None

    def __call__(self, manifest: Manifest) -> None:
        ctx = self.ctx
        if _wanted(ctx, self.verify):
            from seawall.postgres.logical.select import BackupSource
            from seawall.postgres.logical.verify import verify_source

            source = BackupSource(ctx.storage, f"backup {manifest.id}", manifest, in_catalog=True)
            try:
                verification = verify_source(ctx, source, deep=False)
            except DecryptionError as exc:
                log.warning("%s; verifying the stored bytes only", exc)
                verification = verify_source(ctx, source, deep=False, stored_only=True)
            self.verified = verification.ok
            self.level = verification.level
        prune_after(ctx, manifest, warn=False)


def backup_database(
    ctx: Context,
    database: str,
    *,
    progress: Callable[[int], None] | None = None,
    verify: bool | None = None,
) -> BackupResult:
    """``seawall postgres backup`` of one database: back up, verify, prune."""
    from seawall.postgres.logical import backup as logical

    after = _AfterLogical(ctx, verify)
    manifest = logical.backup_database(ctx, database, progress=progress, after=after)
    return BackupResult(manifest, after.verified, after.level)


# --- PostgreSQL base backup ---------------------------------------------------


def _after_base(ctx: Context, verify: bool | None) -> Callable[[Manifest], None]:
    def after(manifest: Manifest) -> None:
        if _wanted(ctx, verify):
            from seawall.postgres.physical.verify import verify_base_backup

            try:
                manifest.verification = verify_base_backup(ctx, manifest, deep=False)
            except DecryptionError as exc:
                log.warning("%s; verifying the stored bytes only", exc)
                manifest.verification = verify_base_backup(
                    ctx, manifest, deep=False, stored_only=True
                )
            if not manifest.verification.ok:
                manifest.status = "failed"
                manifest.error = manifest.verification.message
            ctx.catalog.write(manifest)
            if manifest.status != "success":
                raise BackupFailedError(
                    f"base backup {manifest.id} failed verification: {manifest.error}"
                )
        prune_after(ctx, manifest, warn=True)

    return after


def run_basebackup(
    ctx: Context,
    *,
    wal_wait: float = 60.0,
    fast_checkpoint: bool = True,
    verify: bool | None = None,
    progress: Any = None,
) -> Manifest:
    """``seawall postgres basebackup``: back up, verify, prune."""
    from seawall.postgres.physical import basebackup as physical

    return physical.run_basebackup(
        ctx,
        wal_wait=wal_wait,
        fast_checkpoint=fast_checkpoint,
        progress=progress,
        after=_after_base(ctx, verify),
    )


# --- Qdrant -------------------------------------------------------------------


def _after_qdrant(ctx: Context, verify: bool | None) -> Callable[[Manifest], None]:
    def after(manifest: Manifest) -> None:
        if _wanted(ctx, verify):
            from seawall.qdrant.verify import verify_after_backup

            res = verify_after_backup(ctx, manifest)
            if not res.ok:
                manifest.status = "failed"
                manifest.error = (
                    f"verification right after the backup failed: {res.verification.message}"
                )
                ctx.catalog.write(manifest)
                if manifest.kind == "full-storage":  # seawall.qdrant.full_storage.KIND
                    raise VerificationError(manifest.error)
                raise VerificationError(f"collection {manifest.series!r}: {manifest.error}")
        prune_after(ctx, manifest, warn=True)

    return after


def qdrant_backup(
    ctx: Context,
    collections: list[str] | None = None,
    *,
    verify: bool | None = None,
    progress: ProgressFactory | None = None,
) -> BackupRun:
    """``seawall qdrant backup``: every collection backed up, verified, pruned."""
    from seawall.qdrant import backup as qdrant
    from seawall.qdrant.store import no_progress

    return qdrant.backup(
        ctx, collections, after=_after_qdrant(ctx, verify), progress=progress or no_progress
    )


def qdrant_full_storage(
    ctx: Context, *, verify: bool | None = None, progress: ProgressFactory | None = None
) -> Manifest:
    """``seawall qdrant backup --full-storage``: back up, verify, prune."""
    from seawall.qdrant import full_storage
    from seawall.qdrant.store import no_progress

    return full_storage.backup_full_storage(
        ctx, after=_after_qdrant(ctx, verify), progress=progress or no_progress
    )
