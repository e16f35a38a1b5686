"""``--full-storage``: a snapshot of a whole Qdrant node (all collections + aliases).

Qdrant restores a full-storage snapshot **only at startup**
(``qdrant --storage-snapshot FILE``, or ``--snapshot FILE:collection`` per
collection), never through the API, and only on a single node: in cluster
mode the endpoint is refused. So this is a disaster-recovery artifact for
single-node installs; collection snapshots remain the everyday backup.
The series is the server's ``host:port`` (one node, one series).
"""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import urlsplit

from seawall import __version__
from seawall.catalog.locks import series_lock
from seawall.catalog.models import Manifest, QdrantInfo, utcnow
from seawall.catalog.naming import new_backup_id
from seawall.catalog.runs import record_failure
from seawall.context import Context
from seawall.errors import RefusedError, SeawallError, VerificationError
from seawall.log import get_logger
from seawall.qdrant.backup import (
    ENGINE,
    ProgressFactory,
    _fail,
    _no_progress,
    _prune,
    connect,
    snapshot_to_catalog,
)
from seawall.qdrant.client import redact_url
from seawall.qdrant.snapshots import SnapshotScope

KIND = "full-storage"
BASENAME = "full-storage.tar"
log = get_logger("qdrant.full_storage")


def series_of(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _record_unreachable(ctx: Context, exc: SeawallError, started: datetime) -> None:
    """The node's series is known from QDRANT_URL alone: record the failed run there."""
    base = str(ctx.settings.qdrant_base_url).rstrip("/")
    series = series_of(base)
    m = Manifest(
        id=new_backup_id(started),
        engine=ENGINE,
        kind=KIND,
        series=series,
        target=redact_url(base),
        status="running",
        started_at=started,
        seawall_version=__version__,
        labels={"collection": series, "type": KIND},
    )
    try:
        with series_lock(
            ctx.storage,
            ENGINE,
            KIND,
            series,
            timeout=0,
            command="seawall qdrant backup --full-storage",
            backup_id=m.id,
        ):
            record_failure(ctx.catalog, m, exc)
    except SeawallError as lock_exc:  # a run in progress records its own outcome
        log.warning("run not recorded", extra={"series": series, "error": str(lock_exc)})


def backup_full_storage(
    ctx: Context, *, verify: bool | None = None, progress: ProgressFactory = _no_progress
) -> Manifest:
    from seawall.qdrant.cluster import detect

    s = ctx.settings
    started = utcnow()
    try:
        client, version = connect(ctx)
    except SeawallError as exc:  # every attempted run leaves a record (docs/qdrant.md)
        _record_unreachable(ctx, exc, started)
        raise
    try:
        topo = detect(client, [])
        if topo is not None:
            topo.close()
            raise RefusedError(
                "full-storage snapshots are single-node only and this Qdrant runs in cluster "
                "mode; back up collections instead (`seawall qdrant backup`)"
            )
        series = series_of(client.base_url)
        backup_id = new_backup_id()
        with series_lock(
            ctx.storage,
            ENGINE,
            KIND,
            series,
            timeout=s.lock_timeout,
            command="seawall qdrant backup --full-storage",
            backup_id=backup_id,
        ):
            m = Manifest(
                id=backup_id,
                engine=ENGINE,
                kind=KIND,
                series=series,
                target=client.display_url,
                status="running",
                started_at=utcnow(),
                seawall_version=__version__,
                tool_versions={"qdrant": version, "seawall": __version__},
                labels={"collection": series, "type": KIND},
                qdrant=QdrantInfo(version=version),
            )
            t0 = time.monotonic()
            try:
                m.artifacts.append(
                    snapshot_to_catalog(
                        ctx,
                        client,
                        SnapshotScope.full(),
                        m,
                        BASENAME,
                        "full-storage",
                        progress,
                        record_in="manifest",
                    )
                )
            except BaseException as exc:
                _fail(ctx, m, exc, time.monotonic() - t0)
                raise
            m.status = "success"
            m.finished_at = utcnow()
            m.duration_seconds = round(time.monotonic() - t0, 3)
            ctx.catalog.write(m)
            if verify if verify is not None else s.verify_backup:
                from seawall.qdrant.verify import verify_after_backup

                res = verify_after_backup(ctx, m)
                if not res.ok:
                    m.status = "failed"
                    m.error = (
                        f"verification right after the backup failed: {res.verification.message}"
                    )
                    ctx.catalog.write(m)
                    raise VerificationError(m.error)
            _prune(ctx, KIND, series)
        return m
    finally:
        client.close()
