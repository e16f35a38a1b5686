"""Cluster backups: every shard exactly once, from an Active replica, never
the empty snapshot of a peer without shards; restore through shard uploads."""

from __future__ import annotations

import io

import httpx
import pytest

from seawall.app.backup import qdrant_backup as backup
from seawall.errors import VerificationError
from seawall.qdrant.archive import inspect_archive
from seawall.qdrant.cluster import ClusterError
from seawall.qdrant.restore import restore
from seawall.qdrant.select import resolve
from seawall.qdrant.verify import verify_backup
from tests.qdrant_server import QdrantTestCluster

from .conftest import MakeCtx

DIM = 4


def test_cluster_backup_takes_each_shard_from_an_active_holder(
    qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx
) -> None:
    # 3 peers, 2 shards, rf 1: peer 2 holds nothing. Point seawall at it.
    qdrant_cluster.create_collection("cl", DIM, points=200, seed=1, shard_number=2)
    empty = qdrant_cluster.servers[2]
    ctx = make_ctx(empty, qdrant_peer_urls=qdrant_cluster.urls)
    run = backup(ctx)
    run.raise_for_status()
    m = run.results[0].manifest
    assert m is not None and m.kind == "shard-snapshot" and m.series == "cl"
    by_shard = {getattr(a, "shard_id"): getattr(a, "peer_id") for a in m.artifacts}  # noqa: B009
    assert by_shard == {0: qdrant_cluster.peer_ids[0], 1: qdrant_cluster.peer_ids[1]}
    assert m.qdrant is not None and m.qdrant.points_count == 200
    assert m.verification is not None and m.verification.ok
    # shard snapshots were requested only from the holders, and nothing was left behind
    assert not [r for r in empty.requests if r[0] == "POST" and "snapshots" in r[1]]
    for server in qdrant_cluster.servers:
        assert server.all_snapshots() == []
    deep = verify_backup(ctx, ctx.storage, m, deep=True, write_back=False)
    assert deep.ok, deep.verification.message
    assert "200 points" in " ".join(deep.verification.checks)


def test_unknown_peer_urls_fail_instead_of_an_empty_backup(
    qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx
) -> None:
    qdrant_cluster.create_collection("nopeers", DIM, points=20, seed=2, shard_number=2)
    ctx = make_ctx(qdrant_cluster.servers[2])  # no QDRANT_PEER_URLS
    run = backup(ctx)
    with pytest.raises(ClusterError, match="QDRANT_PEER_URLS"):
        run.raise_for_status()
    (m,) = ctx.catalog.scan("qdrant").manifests
    assert m.status == "failed" and m.artifacts == []


def test_dead_replica_is_skipped(qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx) -> None:
    qdrant_cluster.create_collection(
        "rep", DIM, points=40, seed=3, shard_number=1, replication_factor=2
    )
    first, second = qdrant_cluster.peer_ids[0], qdrant_cluster.peer_ids[1]
    qdrant_cluster.set_replica_state("rep", 0, first, "Dead")
    ctx = make_ctx(qdrant_cluster.servers[0], qdrant_peer_urls=qdrant_cluster.urls)
    m = backup(ctx, ["rep"]).results[0].manifest
    assert m is not None
    assert [getattr(a, "peer_id") for a in m.artifacts] == [second]  # noqa: B009


def test_no_active_replica_fails(qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx) -> None:
    qdrant_cluster.create_collection("dead", DIM, points=10, seed=4, shard_number=1)
    qdrant_cluster.set_replica_state("dead", 0, qdrant_cluster.peer_ids[0], "Dead")
    ctx = make_ctx(qdrant_cluster.servers[0], qdrant_peer_urls=qdrant_cluster.urls)
    with pytest.raises(ClusterError, match="no Active replica"):
        backup(ctx, ["dead"]).raise_for_status()


def test_empty_snapshot_of_a_peer_without_shards_is_not_a_backup(
    qdrant_cluster: QdrantTestCluster,
) -> None:
    """The naive approach (collection snapshot on any peer) yields a valid but
    empty tar; the structure check refuses it."""
    qdrant_cluster.create_collection("naive", DIM, points=30, seed=5, shard_number=2)
    empty = qdrant_cluster.servers[2]
    with httpx.Client(base_url=empty.url) as http:
        snap = http.post("/collections/naive/snapshots").json()["result"]
        data = http.get(f"/collections/naive/snapshots/{snap['name']}").content
        http.delete(f"/collections/naive/snapshots/{snap['name']}")
    report = inspect_archive(io.BytesIO(data), "collection")
    problems = report.problems()
    assert any("no segment data" in p for p in problems) and len(problems) == 2


def test_cluster_restore_puts_shards_back(
    qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx
) -> None:
    qdrant_cluster.create_collection(
        "back", DIM, points=120, seed=6, shard_number=2, replication_factor=2
    )
    ctx = make_ctx(qdrant_cluster.servers[0], qdrant_peer_urls=qdrant_cluster.urls)
    backup(ctx, ["back"]).raise_for_status()
    qdrant_cluster.state.delete_collection("back")
    res = restore(ctx, resolve(ctx, "latest"))
    assert res.points_count == 120
    assert qdrant_cluster.points_count("back") == 120
    uploads = [u for s in qdrant_cluster.servers for u in s.uploads]
    # 2 shards x 2 replicas, each uploaded with its checksum
    assert sorted(u["shard_id"] for u in uploads) == [0, 0, 1, 1]
    assert all(u["checksum"] == u["sha256"] for u in uploads)


def test_cluster_restore_streams_single_replica_shards(
    qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx
) -> None:
    """Replication factor 1: each shard goes to its one holder, decoded while
    uploaded (the streamed path), with the checksum Qdrant verifies."""
    qdrant_cluster.create_collection("one", DIM, points=90, seed=8, shard_number=2)
    ctx = make_ctx(qdrant_cluster.servers[0], qdrant_peer_urls=qdrant_cluster.urls)
    m = backup(ctx, ["one"]).results[0].manifest
    assert m is not None and all(a.raw_sha256 for a in m.artifacts)
    raw = {getattr(a, "shard_id"): a for a in m.artifacts}  # noqa: B009
    qdrant_cluster.state.delete_collection("one")
    res = restore(ctx, resolve(ctx, "latest"))
    assert res.points_count == 90 == qdrant_cluster.points_count("one")
    uploads = [u for s in qdrant_cluster.servers for u in s.uploads]
    assert sorted(u["shard_id"] for u in uploads) == [0, 1]
    for u in uploads:
        art = raw[u["shard_id"]]
        assert u["sha256"] == u["checksum"] == art.raw_sha256 and u["size"] == art.raw_size
        assert u["transfer_encoding"] is None  # streamed with a Content-Length


def test_cluster_restore_without_peer_urls_is_refused(
    qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx
) -> None:
    qdrant_cluster.create_collection("refuse", DIM, points=30, seed=7, shard_number=2)
    ctx = make_ctx(qdrant_cluster.servers[0], qdrant_peer_urls=qdrant_cluster.urls)
    backup(ctx, ["refuse"]).raise_for_status()
    lonely = make_ctx(qdrant_cluster.servers[2])
    from seawall.errors import RefusedError

    with pytest.raises(RefusedError, match="QDRANT_PEER_URLS"):
        restore(lonely, resolve(lonely, "latest"), clean=True)


def test_verify_refuses_a_collection_snapshot_without_data(
    qdrant_cluster: QdrantTestCluster, make_ctx: MakeCtx
) -> None:
    """Even a stored backup made elsewhere from an empty peer fails verify."""
    import hashlib

    from seawall.catalog.models import Artifact, Manifest, QdrantInfo, utcnow
    from seawall.catalog.naming import new_backup_id
    from seawall.catalog.store import artifact_key
    from seawall.pipeline.store import store_stream

    qdrant_cluster.create_collection("planted", DIM, points=30, seed=8, shard_number=2)
    empty = qdrant_cluster.servers[2]
    with httpx.Client(base_url=empty.url) as http:
        snap = http.post("/collections/planted/snapshots").json()["result"]
        data = http.get(f"/collections/planted/snapshots/{snap['name']}").content
    ctx = make_ctx(empty)
    m = Manifest(
        id=new_backup_id(),
        engine="qdrant",
        kind="snapshot",
        series="planted",
        target="t",
        status="success",
        started_at=utcnow(),
        qdrant=QdrantInfo(points_count=30),
    )
    res = store_stream(io.BytesIO(data), ctx.storage, artifact_key(m, "snapshot.tar.zst"), ctx.spec)
    m.artifacts.append(
        Artifact(
            name="snapshot.tar.zst",
            role="snapshot",
            stored_size=res.stored_size,
            raw_size=res.raw_size,
            sha256=res.sha256,
            raw_sha256=hashlib.sha256(data).hexdigest(),
            compression="zstd",
        )
    )
    ctx.catalog.write(m)
    out = verify_backup(ctx, ctx.storage, m, deep=False, write_back=True)
    assert not out.ok and isinstance(out.error, VerificationError)
    assert "does not hold this shard" in out.verification.message
