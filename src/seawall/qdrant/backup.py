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
6. write the manifest (last, atomically), verify right after (default on;
   the result goes into the manifest) and apply retention.

Collections run concurrently up to ``QDRANT_CONCURRENCY``; one failing
collection does not stop the others, and :meth:`BackupRun.raise_for_status`
turns "some failed" into :class:`PartialFailureError` (exit 10).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from seawall import __version__
from seawall.catalog.locks import series_lock
from seawall.catalog.models import Artifact, Manifest, QdrantInfo, utcnow
from seawall.catalog.naming import new_backup_id
from seawall.catalog.rejected import TargetMissing
from seawall.catalog.runs import artifact_from_store, record_failure
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.errors import (
    BackupFailedError,
    NotFoundError,
    PartialFailureError,
    SeawallError,
    VerificationError,
)
from seawall.log import get_logger
from seawall.pipeline.store import PipelineSpec, StoreResult, store_stream
from seawall.qdrant.client import QdrantClient, redact_url
from seawall.qdrant.snapshots import (
    Prefetcher,
    SnapshotDownload,
    SnapshotInfo,
    SnapshotScope,
    create_snapshot,
    delete_snapshot,
)
from seawall.qdrant.streamcheck import SnapshotStructure

ENGINE: Final = "qdrant"
KIND = "snapshot"
SNAPSHOT_BASENAME = "snapshot.tar"
SAMPLE_SIZE = 3
QDRANT_ZSTD_LEVEL = 1

log = get_logger("qdrant.backup")

#: ``progress_factory(label, total)`` returns a context manager yielding a byte callback.
ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def _no_progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


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


def qdrant_spec(ctx: Context) -> PipelineSpec:
    """The pipeline spec for snapshots.

    ``QDRANT_COMPRESSION`` overrides ``COMPRESSION``; zstd runs at level 1
    unless ``COMPRESSION_LEVEL`` is set: on snapshots (float32 vectors plus
    zero-filled preallocated pages) level 1 gives level 3's ratio at about
    twice the speed (measured; see docs/qdrant.md).
    """
    s = ctx.settings
    spec = ctx.spec
    compression = s.qdrant_compression or spec.compression
    level = s.compression_level
    if level is None and compression == "zstd":
        level = QDRANT_ZSTD_LEVEL
    if (compression, level) == (spec.compression, spec.level):
        return spec
    return PipelineSpec(compression=compression, level=level, threads=spec.threads, keys=spec.keys)


def artifact_from(name: str, role: str, res: StoreResult, **extra: Any) -> Artifact:
    return artifact_from_store(name, role, res, "application/x-tar", **extra)


def snapshot_to_catalog(
    ctx: Context,
    client: QdrantClient,
    scope: SnapshotScope,
    manifest: Manifest,
    basename: str,
    role: str,
    progress: ProgressFactory,
    *,
    record_in: Literal["manifest", "artifact"],
    **extra: Any,
) -> Artifact:
    """Create a snapshot of ``scope``, store it, and always delete the server's copy.

    The deletion is here, once, so that no path can leave snapshots behind
    to fill the server's disk (also when the download or the store fails).
    The snapshot's name and checksum go into ``manifest.qdrant`` (one
    snapshot per backup) or into the artifact (a cluster backup: one per shard).
    """
    snap = create_snapshot(client, scope)
    if record_in == "manifest":
        assert manifest.qdrant is not None
        manifest.qdrant.snapshot_name = snap.name
        manifest.qdrant.snapshot_checksum = snap.checksum
    else:
        extra.update(snapshot_name=snap.name, snapshot_checksum=snap.checksum)
    try:
        return store_snapshot(ctx, client, scope, snap, manifest, basename, role, progress, **extra)
    finally:
        delete_snapshot(client, scope, snap.name)


def store_snapshot(
    ctx: Context,
    client: QdrantClient,
    scope: SnapshotScope,
    snap: SnapshotInfo,
    manifest: Manifest,
    basename: str,
    role: str,
    progress: ProgressFactory,
    **extra: Any,
) -> Artifact:
    """Download ``snap`` into the catalog (checksum checked before commit)."""
    # The download already hashes the raw snapshot (checked against the
    # server's checksum); a second raw hash in the pipeline would be wasted.
    spec = dataclasses.replace(qdrant_spec(ctx), raw_hash=False)
    name = basename + spec.suffix()
    download = SnapshotDownload(client, scope, snap)
    # The pipeline's own prefetch thread already overlaps the download (and
    # its hash) with encryption; a second thread in front of it only added a
    # queue hop per piece (measured: slightly slower). Without that thread
    # (spec.prefetch off) the Prefetcher provides the overlap.
    reader: SnapshotDownload | Prefetcher = download if spec.prefetch else Prefetcher(download)
    structure = SnapshotStructure()
    started = time.monotonic()
    try:
        with progress(f"{scope.label}", snap.size) as tick:
            res = store_stream(
                reader,  # type: ignore[arg-type]
                ctx.storage,
                artifact_key(manifest, name),
                spec,
                before_commit=download.check_complete,
                progress=tick,
                tap=structure.feed,
            )
    finally:
        reader.close()
    # The transfer alone (download + compress + encrypt + store + fsync), so
    # benchmarks can set it beside `curl | zstd | age` without the create.
    log.info(
        "snapshot downloaded and stored",
        extra={
            "scope": scope.label,
            "raw_bytes": res.raw_size,
            "stored_bytes": res.stored_size,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    if download.resumes:
        extra.setdefault("download_resumes", download.resumes)
    res.raw_sha256 = download.sha256
    art = artifact_from(name, role, res, **extra)
    art.stream_check = structure.result(checksum_matched=bool(snap.checksum))
    return art


def take_sample(client: QdrantClient, collection: str) -> dict[str, Any] | None:
    """A few points with their vectors, for searches after a restore.

    Each point also records ``top``: the ids of the top hits of a search by
    its vector on the live collection, so ``seawall drill`` can compare the
    restored copy's top hits with them (three searches: cheap).
    """
    from seawall.qdrant.deep import sample_vectors

    try:
        points = client.sample_points(collection, SAMPLE_SIZE)
    except SeawallError as exc:
        log.warning("could not sample points", extra={"collection": collection, "error": str(exc)})
        return None
    for pid, vector, using in sample_vectors({"points": points}):
        try:
            top = client.query(collection, vector, using, limit=3)
        except SeawallError:
            continue  # the searches are a bonus: the sample itself is what restore checks
        for point in points:
            if point.get("id") == pid:
                point["top"] = top
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
    cluster: Any = None,
    verify: bool | None = None,
    progress: ProgressFactory = _no_progress,
) -> Manifest:
    """Back up one collection; returns the successful manifest or raises.

    ``cluster`` is a :class:`seawall.qdrant.cluster.Topology` in cluster mode.
    """
    s = ctx.settings
    kind = "shard-snapshot" if cluster is not None else KIND
    backup_id = new_backup_id()
    with series_lock(
        ctx.storage,
        ENGINE,
        kind,
        collection,
        timeout=s.lock_timeout,
        command=f"seawall qdrant backup {collection}",
        backup_id=backup_id,
    ):
        manifest = Manifest(
            id=backup_id,
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
        t0 = time.monotonic()
        try:
            _run(ctx, client, manifest, version, cluster, progress)
        except BaseException as exc:
            _fail(ctx, manifest, exc, time.monotonic() - t0)
            raise
        manifest.status = "success"
        manifest.finished_at = utcnow()
        manifest.duration_seconds = round(time.monotonic() - t0, 3)
        ctx.catalog.write(manifest)
        log.info(
            "qdrant backup stored",
            extra={"collection": collection, "backup_id": backup_id, "bytes": manifest.stored_size},
        )
        if verify if verify is not None else s.verify_backup:
            from seawall.qdrant.verify import verify_after_backup

            verification = verify_after_backup(ctx, manifest)
            if not verification.ok:
                manifest.status = "failed"
                manifest.error = f"verification right after the backup failed: {verification.verification.message}"
                ctx.catalog.write(manifest)
                raise VerificationError(f"collection {collection!r}: {manifest.error}")
        _prune(ctx, kind, collection)
    return manifest


def _run(
    ctx: Context,
    client: QdrantClient,
    manifest: Manifest,
    version: str,
    cluster: Any,
    progress: ProgressFactory,
) -> None:
    collection = manifest.series
    plan = None
    try:
        if cluster is not None:
            from seawall.qdrant.cluster import plan_shards

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
    )
    manifest.qdrant = qinfo
    if cluster is not None:
        from seawall.qdrant.cluster import backup_shards

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


def _fail(ctx: Context, manifest: Manifest, exc: BaseException, duration: float) -> None:
    """Remove what this run stored and record the failure (best effort)."""
    record_failure(ctx.catalog, manifest, exc, duration)


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
        try:
            with series_lock(
                ctx.storage,
                ENGINE,
                manifest.kind,
                name,
                timeout=0,
                command=f"seawall qdrant backup {name}",
                backup_id=manifest.id,
            ):
                record_failure(ctx.catalog, manifest, cause)
        except SeawallError as lock_exc:  # a run in progress records its own outcome
            log.warning("run not recorded", extra={"collection": name, "error": str(lock_exc)})
            continue
        recorded.append(manifest)
    return recorded


#: the series of a run that could not even list the collections
ALL_COLLECTIONS = "*"


class _Unlisted(TargetMissing, SeawallError):
    """Qdrant could not be asked which collections exist: no series to record in."""


def _prune(ctx: Context, kind: str, collection: str) -> None:
    if not ctx.settings.prune_after_backup:
        return
    try:
        from seawall import prune
    except ImportError:
        log.debug("seawall.prune not available; skipping retention")
        return
    try:
        prune.prune_series(ctx, ENGINE, kind, collection)
    except SeawallError as exc:
        log.warning(
            "retention after backup failed", extra={"collection": collection, "error": str(exc)}
        )


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
    verify: bool | None = None,
    progress: ProgressFactory = _no_progress,
) -> BackupRun:
    """Back up the named collections (default: QDRANT_COLLECTIONS, else all)."""
    from seawall.qdrant.cluster import detect

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
                    verify=verify,
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
