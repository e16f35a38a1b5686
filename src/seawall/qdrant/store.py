"""A Qdrant snapshot stored into the catalog: create, stream, check, delete.

Shared by every Qdrant backup kind (a collection snapshot, one shard
snapshot per shard of a cluster, a full-storage snapshot), so it sits below
all of them: :mod:`.backup` and :mod:`.cluster` both import it and neither
imports the other's internals (there was an import circle between them).

The deletion of the server's copy is here, once, so that no path can leave
snapshots behind to fill the server's disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Literal

from seawall.catalog.models import Artifact, Manifest
from seawall.catalog.runs import artifact_from_store
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.log import get_logger
from seawall.pipeline.store import PipelineSpec, StoreResult, store_stream
from seawall.qdrant.client import QdrantClient
from seawall.qdrant.snapshots import (
    MIN_POLL_SECONDS,
    Prefetcher,
    SnapshotDownload,
    SnapshotInfo,
    SnapshotScope,
    create_snapshot,
    delete_snapshot,
)
from seawall.qdrant.streamcheck import SnapshotStructure

#: zstd level of snapshots unless COMPRESSION_LEVEL is set (see qdrant_spec)
QDRANT_ZSTD_LEVEL = 1

log = get_logger("qdrant.backup")

#: ``progress_factory(label, total)`` returns a context manager yielding a byte callback.
ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def no_progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


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
    from seawall.qdrant import leftovers

    leftovers.sweep(ctx.storage, client, scope)
    # the longest an interrupted run's snapshot may take to appear (create, the
    # poll after a timeout), plus an hour: Qdrant goes on after the client died
    lifetime = client.long_timeout * 4 + MIN_POLL_SECONDS + 3600
    record = leftovers.begin(ctx.storage, client, scope, lifetime)
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
        if delete_snapshot(client, scope, snap.name):
            # kept otherwise (and when the create failed: Qdrant may still
            # finish it), so the next run deletes what this one could not
            ctx.storage.delete(record)


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
