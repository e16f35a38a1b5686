"""``--full-storage``: a snapshot of a whole Qdrant node (all collections + aliases).

Qdrant restores a full-storage snapshot **only at startup**
(``qdrant --storage-snapshot FILE``, or ``--snapshot FILE:collection`` per
collection), never through the API, and only on a single node: in cluster
mode the endpoint is refused. So this is a disaster-recovery artifact for
single-node installs; collection snapshots remain the everyday backup.
The series is the server's ``host:port`` (one node, one series).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from seawall import __version__
from seawall.catalog.models import Manifest, QdrantInfo, utcnow
from seawall.catalog.naming import new_backup_id
from seawall.catalog.run import AfterBackup, backup_run, record_failed_run
from seawall.context import Context
from seawall.errors import RefusedError, SeawallError
from seawall.log import get_logger
from seawall.qdrant.backup import ENGINE, connect
from seawall.qdrant.client import redact_url
from seawall.qdrant.cluster import detect
from seawall.qdrant.snapshots import SnapshotScope
from seawall.qdrant.store import ProgressFactory, no_progress, snapshot_to_catalog

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
    record_failed_run(
        ctx.catalog, ctx.storage, m, exc, command="seawall qdrant backup --full-storage"
    )


def backup_full_storage(
    ctx: Context, *, after: AfterBackup | None = None, progress: ProgressFactory = no_progress
) -> Manifest:
    """Snapshot the whole node; returns the successful manifest or raises.

    ``after`` runs inside the series lock once the manifest is written (the
    application layer's verify and prune).
    """
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
        manifest = Manifest(
            id=new_backup_id(),
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

        def work(m: Manifest) -> None:
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

        return backup_run(
            ctx.catalog,
            ctx.storage,
            manifest,
            work,
            timeout=s.lock_timeout,
            command="seawall qdrant backup --full-storage",
            after=after,
        )
    finally:
        client.close()
