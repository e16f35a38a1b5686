"""Cluster mode: several peers on several ports sharing one cluster state."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import httpx
from tests.qdrant_server import QdrantTestCluster

DIM = 4


def test_cluster_layout(qdrant_cluster: QdrantTestCluster) -> None:
    qdrant_cluster.create_collection(
        "cl", DIM, points=90, seed=3, shard_number=2, replication_factor=2
    )
    peer_ids = qdrant_cluster.peer_ids
    for server in qdrant_cluster.servers:
        info = httpx.get(f"{server.url}/cluster").json()["result"]
        assert info["status"] == "enabled"
        assert info["peer_id"] == server.peer_id
        assert sorted(int(p) for p in info["peers"]) == sorted(peer_ids)
        assert all(p["uri"] for p in info["peers"].values())
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for server in qdrant_cluster.servers:
        info = httpx.get(f"{server.url}/collections/cl/cluster").json()["result"]
        assert info["peer_id"] == server.peer_id and info["shard_count"] == 2
        for local in info["local_shards"]:
            seen[local["shard_id"]].add(server.peer_id)
            assert local["state"] == "Active"
        for remote in info["remote_shards"]:
            assert remote["peer_id"] != server.peer_id
    assert all(len(peers) == 2 for peers in seen.values())  # replication_factor 2
    assert qdrant_cluster.points_count("cl") == 90
    count = httpx.post(
        f"{qdrant_cluster.urls[2]}/collections/cl/points/count", json={"exact": True}
    )
    assert count.json()["result"]["count"] == 90


def test_peer_without_shards_returns_tiny_empty_snapshot(qdrant_cluster: QdrantTestCluster) -> None:
    qdrant_cluster.create_collection(
        "sparse", DIM, points=40, seed=1, shard_number=2, replication_factor=1
    )
    empty_peer = qdrant_cluster.servers[2]  # round-robin: peers 0 and 1 hold the shards
    info = httpx.get(f"{empty_peer.url}/collections/sparse/cluster").json()["result"]
    assert info["local_shards"] == [] and len(info["remote_shards"]) == 2
    snap = httpx.post(f"{empty_peer.url}/collections/sparse/snapshots").json()["result"]
    data = httpx.get(f"{empty_peer.url}/collections/sparse/snapshots/{snap['name']}").content
    assert snap["size"] == len(data) < 64 * 1024
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        state = json.load(tar.extractfile("0/replica_state.json"))  # type: ignore[arg-type]
    assert "config.json" in names
    assert not any("/segments/" in n for n in names)
    assert state["is_local"] is False
    # a peer holding a shard gives a real one
    full = httpx.post(f"{qdrant_cluster.urls[0]}/collections/sparse/snapshots").json()["result"]
    assert full["size"] > 100 * snap["size"]


def test_shard_snapshots_create_download_upload_delete(qdrant_cluster: QdrantTestCluster) -> None:
    qdrant_cluster.create_collection("sh", DIM, points=60, seed=2, shard_number=2)
    holder, other = qdrant_cluster.servers[0], qdrant_cluster.servers[1]
    refused = httpx.post(f"{other.url}/collections/sh/shards/0/snapshots")
    assert refused.status_code == 404  # shard 0 is not local on peer 1
    snap = httpx.post(
        f"{holder.url}/collections/sh/shards/0/snapshots", params={"wait": "true"}
    ).json()["result"]
    listed = httpx.get(f"{holder.url}/collections/sh/shards/0/snapshots").json()["result"]
    assert [s["name"] for s in listed] == [snap["name"]]
    data = httpx.get(f"{holder.url}/collections/sh/shards/0/snapshots/{snap['name']}").content
    assert hashlib.sha256(data).hexdigest() == snap["checksum"]
    before = qdrant_cluster.points_count("sh")
    qdrant_cluster.servers[0].upsert("sh", [])  # no-op, keeps API symmetrical
    uploaded = httpx.post(
        f"{holder.url}/collections/sh/shards/0/snapshots/upload",
        params={"priority": "snapshot", "checksum": snap["checksum"]},
        files={"snapshot": ("s.snapshot", io.BytesIO(data))},
        timeout=60,
    )
    assert uploaded.status_code == 200, uploaded.text
    assert qdrant_cluster.points_count("sh") == before == 60
    assert holder.uploads[-1]["shard_id"] == 0 and holder.uploads[-1]["priority"] == "snapshot"
    assert (
        httpx.delete(f"{holder.url}/collections/sh/shards/0/snapshots/{snap['name']}").status_code
        == 200
    )
    assert httpx.get(f"{holder.url}/collections/sh/shards/0/snapshots").json()["result"] == []


def test_dead_replica_is_reported(qdrant_cluster: QdrantTestCluster) -> None:
    qdrant_cluster.create_collection("dead", DIM, points=20, shard_number=1, replication_factor=2)
    first, second = qdrant_cluster.peer_ids[0], qdrant_cluster.peer_ids[1]
    qdrant_cluster.set_replica_state("dead", 0, first, "Dead")
    info = httpx.get(f"{qdrant_cluster.urls[2]}/collections/dead/cluster").json()["result"]
    states = {r["peer_id"]: r["state"] for r in info["remote_shards"]}
    assert states == {first: "Dead", second: "Active"}
    assert qdrant_cluster.points_count("dead") == 20  # served by the Active replica
