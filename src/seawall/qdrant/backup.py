"""``seawall qdrant backup``: snapshot collections into the catalog.

Per collection, in order (and why):

1. take the series lock (overlapping CronJob runs must not collide);
2. read the collection's config, points count, shard layout and a small
   sample of points with their vectors (compared after a restore);
3. create the snapshot on the server (or, in a cluster, one shard snapshot
   per shard from a peer holding an Active replica: :mod:`.cluster`);
4. stream it through the pipeline; the sha256 is compared with the
   server's checksum *before* the artifact is renamed into place;
5. delete the server's copy, whatever happened (a snapshot left behind
   fills Qdrant's disk);
6. write the manifest (last, atomically); the application layer then
   verifies right after (default on; the result goes into the manifest)
   and applies retention (:mod:`seawall.app.backup`).

Steps 1 and 6, and recording a failure, are the lifecycle every engine
shares (:func:`seawall.catalog.run.backup_run`); storing a snapshot is
:mod:`.store`, shared with :mod:`.cluster` and :mod:`.full_storage`.

Collections run concurrently up to ``QDRANT_CONCURRENCY``; one failing
collection does not stop the others, and :meth:`BackupRun.raise_for_status`
turns "some failed" into :class:`PartialFailureError` (exit 10).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from seawall import __version__
from seawall.catalog.models import Manifest, QdrantInfo, utcnow
from seawall.catalog.naming import new_backup_id
from seawall.catalog.rejected import TargetMissing
from seawall.catalog.run import AfterBackup, backup_run, record_failed_run
from seawall.context import Context
from seawall.errors import (
    BackupFailedError,
    ConfigError,
    NotFoundError,
    PartialFailureError,
    SeawallError,
)
from seawall.log import get_logger
from seawall.qdrant.aliases import aliases_of
from seawall.qdrant.client import QdrantClient, redact_url
from seawall.qdrant.cluster import Topology, backup_shards, detect, plan_shards
from seawall.qdrant.snapshots import SnapshotScope
from seawall.qdrant.store import ProgressFactory, no_progress, snapshot_to_catalog

ENGINE: Final = "qdrant"
KIND = "snapshot"
SNAPSHOT_BASENAME = "snapshot.tar"
SAMPLE_SIZE = 3

log = get_logger("qdrant.backup")


@dataclass
class CollectionResult:
    collection: str
    manifest: Manifest | None = None
    error: SeawallError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BackupRun:
    results: list[CollectionResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CollectionResult]:
        return [r for r in self.results if not r.ok]

    def raise_for_status(self) -> None:
        """Exit code policy: all ok → 0; one asked and failed → its code; some → 10."""
        failed = self.failed
        if not failed:
            return
        if len(self.results) == 1:
            assert failed[0].error is not None
            raise failed[0].error
        names = ", ".join(repr(r.collection) for r in failed)
        if len(failed) < len(self.results):
            raise PartialFailureError(
                f"{len(failed)} of {len(self.results)} Qdrant collections failed ({names}); "
                "see the messages above"
            )
        raise BackupFailedError(
            f"all {len(failed)} Qdrant collection backups failed ({names}); see the messages above"
        )


class CollectionMissingError(TargetMissing, NotFoundError):
    """The server has no collection of that name.

    Never backed up before: the run is recorded as rejected, not as a new
    failing series (catalog/rejected.py).
    """


def take_sample(client: QdrantClient, collection: str) -> dict[str, Any] | None:
    """A few points with their vectors, for searches after a restore.

    Each point also records ``top``: the ids of the top hits of a search by
    its vector on the live collection, so ``seawall drill`` can compare the
    restored copy's top hits with them (three searches: cheap).
    """
    from seawall.qdrant.sample import point_queries, record_top, trim

    try:
        points = client.sample_points(collection, SAMPLE_SIZE)
    except SeawallError as exc:
        log.warning("could not sample points", extra={"collection": collection, "error": str(exc)})
        return None
    for point in points:
        trim(point)  # a ColBERT point's every token would bloat the manifest
        # every vector of the point: dense, multivector and sparse (see qdrant/sample.py)
        for _pid, vector, using in point_queries(point):
            try:
                top = client.query(collection, vector, using, limit=3)
            except SeawallError:
                continue  # the searches are a bonus: the sample itself is what restore checks
            record_top(point, using, top)
    return {"points": points}


def shard_layout(client: QdrantClient, collection: str) -> list[dict[str, Any]]:
    try:
        info = client.collection_cluster(collection)
    except SeawallError:
        return []
    layout: list[dict[str, Any]] = []
    for local in info.get("local_shards") or []:
        layout.append(
            {
                "shard_id": local.get("shard_id"),
                "peer_id": info.get("peer_id"),
                "state": local.get("state"),
                "points_count": local.get("points_count"),
            }
        )
    for remote in info.get("remote_shards") or []:
        layout.append(
            {
                "shard_id": remote.get("shard_id"),
                "peer_id": remote.get("peer_id"),
                "state": remote.get("state"),
            }
        )
    return sorted(layout, key=lambda x: (x.get("shard_id") or 0, str(x.get("peer_id"))))


def backup_collection(
    ctx: Context,
    client: QdrantClient,
    collection: str,
    *,
    version: str,
    cluster: Topology | None = None,
    after: AfterBackup | None = None,
    progress: ProgressFactory = no_progress,
) -> Manifest:
    """Back up one collection; returns the successful manifest or raises.

    ``cluster`` is the cluster's :class:`~seawall.qdrant.cluster.Topology`
    in cluster mode. ``after`` runs inside the series lock once the manifest
    is written (the application layer's verify and prune).
    """
    s = ctx.settings
    kind = "shard-snapshot" if cluster is not None else KIND
    manifest = Manifest(
        id=new_backup_id(),
        engine=ENGINE,
        kind=kind,
        series=collection,
        target=f"{client.display_url}/collections/{collection}",
        status="running",
        started_at=utcnow(),
        seawall_version=__version__,
        tool_versions={"qdrant": version, "seawall": __version__},
        labels={"collection": collection, "type": kind},
    )
    return backup_run(
        ctx.catalog,
        ctx.storage,
        manifest,
        lambda m: _run(ctx, client, m, version, cluster, progress),
        timeout=s.lock_timeout,
        command=f"seawall qdrant backup {collection}",
        after=after,
    )


def _run(
    ctx: Context,
    client: QdrantClient,
    manifest: Manifest,
    version: str,
    cluster: Topology | None,
    progress: ProgressFactory,
) -> None:
    collection = manifest.series
    plan = None
    try:
        if cluster is not None:
            plan = plan_shards(cluster, collection)  # fail early and clearly
        info = client.collection_info(collection)
    except NotFoundError:
        raise CollectionMissingError(
            f"collection {collection!r} does not exist on {client.display_url} (a typo, or "
            "deleted since it was listed?); fix QDRANT_COLLECTIONS, and `seawall forget "
            f"--series {collection}` once it is gone for good"
        ) from None
    qinfo = QdrantInfo(
        version=version,
        collection=collection,
        config=info.get("config") if isinstance(info.get("config"), dict) else None,
        points_count=info.get("points_count")
        if isinstance(info.get("points_count"), int)
        else None,
        shards=shard_layout(client, collection),
        sample=take_sample(client, collection),
        aliases=aliases_of(client, collection),
        payload_schema=info.get("payload_schema")
        if isinstance(info.get("payload_schema"), dict)
        else None,
    )
    manifest.qdrant = qinfo
    if cluster is not None:
        backup_shards(ctx, cluster, manifest, progress, plan)
        return
    manifest.artifacts.append(
        snapshot_to_catalog(
            ctx,
            client,
            SnapshotScope.collection(collection),
            manifest,
            SNAPSHOT_BASENAME,
            "snapshot",
            progress,
            record_in="manifest",
        )
    )


def record_unreachable(
    ctx: Context, collections: list[str] | None, exc: SeawallError, started: datetime
) -> list[Manifest]:
    """Every attempted run leaves a record, also when Qdrant cannot be reached.

    Without one a Qdrant that is down recorded nothing and the failure alert
    never fired. The run is recorded as failed in each series it would have
    written: the collections asked for (arguments, else ``QDRANT_COLLECTIONS``),
    else every collection with a successful backup in the catalog (what
    "back up all" covered last time). When none is known (the first run ever,
    against a server that is down) one rejected run is recorded for the
    server (series ``*``, catalog/rejected.py): there is no series to page for.
    """
    names = list(dict.fromkeys(collections or ctx.settings.qdrant_collections))
    kinds: dict[str, str] = {}
    backed_up: set[str] = set()
    for m in ctx.catalog.scan(ENGINE).manifests:  # newest first
        if m.kind in (KIND, "shard-snapshot"):
            kinds.setdefault(m.series, m.kind)
            if m.ok:
                backed_up.add(m.series)
    names = names or sorted(backed_up)
    target = redact_url(str(ctx.settings.qdrant_base_url).rstrip("/"))
    recorded: list[Manifest] = []
    for name in names or [ALL_COLLECTIONS]:
        manifest = Manifest(
            id=new_backup_id(started),
            engine=ENGINE,
            kind=kinds.get(name, KIND),
            series=name,
            target=f"{target}/collections/{name}" if names else target,
            status="running",
            started_at=started,
            seawall_version=__version__,
            labels={"collection": name, "type": kinds.get(name, KIND)},
        )
        cause: BaseException = exc if names else _Unlisted(str(exc))
        if not record_failed_run(
            ctx.catalog,
            ctx.storage,
            manifest,
            cause,
            command=f"seawall qdrant backup {name}",
        ):
            continue
        recorded.append(manifest)
    return recorded


#: the series of a run that could not even list the collections
ALL_COLLECTIONS = "*"


class _Unlisted(TargetMissing, SeawallError):
    """Qdrant could not be asked which collections exist: no series to record in."""


def connect(ctx: Context) -> tuple[QdrantClient, str]:
    """Client for the configured server, health-checked; returns (client, version)."""
    client = QdrantClient.from_settings(ctx.settings)
    try:
        client.ready()
        version = client.version()
    except BaseException:
        client.close()
        raise
    return client, version


def backup(
    ctx: Context,
    collections: list[str] | None = None,
    *,
    after: AfterBackup | None = None,
    progress: ProgressFactory = no_progress,
) -> BackupRun:
    """Back up the named collections (default: QDRANT_COLLECTIONS, else all).

    ``after`` runs after each collection's backup, inside its series lock.
    """
    if any(not name for name in collections or ()):
        # Qdrant has no collection named "": an unset variable in a script. Asking
        # Qdrant would record a failed (or rejected) run in a junk series "%".
        raise ConfigError(
            "a collection name is empty (an unset variable?); name the collections, "
            "or give none to back up QDRANT_COLLECTIONS, else every collection"
        )
    started = utcnow()
    try:
        client, version = connect(ctx)
    except SeawallError as exc:
        record_unreachable(ctx, collections, exc, started)
        raise
    topology = None
    try:
        try:
            names = list(
                collections or ctx.settings.qdrant_collections or client.collection_names()
            )
            names = list(dict.fromkeys(names))
            topology = detect(client, ctx.settings.qdrant_peer_urls)
        except SeawallError as exc:
            record_unreachable(ctx, collections, exc, started)
            raise
        run = BackupRun([CollectionResult(n) for n in names])
        if not names:
            log.warning("Qdrant has no collections; nothing to back up")
            return run

        def one(result: CollectionResult) -> None:
            try:
                result.manifest = backup_collection(
                    ctx,
                    client,
                    result.collection,
                    version=version,
                    cluster=topology,
                    after=after,
                    progress=progress,
                )
            except SeawallError as exc:
                result.error = exc
                log.error(
                    "qdrant backup failed",
                    extra={"collection": result.collection, "error": str(exc)},
                )
            except Exception as exc:
                result.error = BackupFailedError(
                    f"collection {result.collection!r}: unexpected {type(exc).__name__}: {exc}"
                )
                log.error("qdrant backup failed", exc_info=True)

        workers = max(1, min(ctx.settings.qdrant_concurrency, len(names)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qdrant-backup") as pool:
            list(pool.map(one, run.results))
        return run
    finally:
        if topology is not None:
            topology.close()
        client.close()
