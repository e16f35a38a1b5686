"""Cluster mode: several peers on several ports sharing one cluster state.

Placement is discovered through ``/collections/{c}/cluster`` rather than
assumed, so these also hold against a real cluster (``QDRANT_CLUSTER_URLS``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

import httpx
from tests.qdrant_server.fixtures import require_test_cluster

DIM = 4


def _http(cluster: Any, url: str) -> httpx.Client:
    headers = {"api-key": cluster.api_key} if cluster.api_key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def _layout(cluster: Any, collection: str) -> dict[str, dict[str, Any]]:
    """REST URL -> that peer's ``/collections/{c}/cluster`` result."""
    out = {}
    for url in cluster.urls:
        with _http(cluster, url) as http:
            out[url] = http.get(f"/collections/{collection}/cluster").json()["result"]
    return out


def test_cluster_layout(qdrant_cluster: Any) -> None:
    qdrant_cluster.create_collection(
        "cl", DIM, points=90, seed=3, shard_number=2, replication_factor=2
    )
    peer_ids = qdrant_cluster.peer_ids
    for url, peer_id in zip(qdrant_cluster.urls, peer_ids, strict=True):
        with _http(qdrant_cluster, url) as http:
            info = http.get("/cluster").json()["result"]
        assert info["status"] == "enabled"
        assert info["peer_id"] == peer_id
        assert sorted(int(p) for p in info["peers"]) == sorted(peer_ids)
        assert all(p["uri"] for p in info["peers"].values())
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for info in _layout(qdrant_cluster, "cl").values():
        assert info["shard_count"] == 2
        for local in info["local_shards"]:
            seen[local["shard_id"]].add(info["peer_id"])
            assert local["state"] == "Active"
        for remote in info["remote_shards"]:
            assert remote["peer_id"] != info["peer_id"]
    assert all(len(peers) == 2 for peers in seen.values())  # replication_factor 2
    assert qdrant_cluster.points_count("cl") == 90
    with _http(qdrant_cluster, qdrant_cluster.urls[-1]) as http:
        count = http.post("/collections/cl/points/count", json={"exact": True})
    assert count.json()["result"]["count"] == 90


def test_peer_without_shards_returns_tiny_empty_snapshot(qdrant_cluster: Any) -> None:
    qdrant_cluster.create_collection(
        "sparse", DIM, points=40, seed=1, shard_number=2, replication_factor=1
    )
    layout = _layout(qdrant_cluster, "sparse")
    empty_url = next(u for u, info in layout.items() if not info["local_shards"])
    holder_url = next(u for u, info in layout.items() if info["local_shards"])
    assert len(layout[empty_url]["remote_shards"]) == 2
    with _http(qdrant_cluster, empty_url) as http:
        snap = http.post("/collections/sparse/snapshots").json()["result"]
        data = http.get(f"/collections/sparse/snapshots/{snap['name']}").content
        http.delete(f"/collections/sparse/snapshots/{snap['name']}")
    assert snap["size"] == len(data) < 64 * 1024
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        state = json.load(tar.extractfile("0/replica_state.json"))  # type: ignore[arg-type]
    assert "config.json" in names
    assert not any("/segments/" in n for n in names)
    assert state["is_local"] is False
    # a peer holding a shard gives a real one
    with _http(qdrant_cluster, holder_url) as http:
        full = http.post("/collections/sparse/snapshots").json()["result"]
        http.delete(f"/collections/sparse/snapshots/{full['name']}")
    assert full["size"] > 100 * snap["size"]


def test_shard_snapshots_create_download_upload_delete(qdrant_cluster: Any) -> None:
    qdrant_cluster.create_collection("sh", DIM, points=60, seed=2, shard_number=2)
    layout = _layout(qdrant_cluster, "sh")
    holder = next(
        u for u, i in layout.items() if any(s["shard_id"] == 0 for s in i["local_shards"])
    )
    other = next(u for u in layout if u != holder)
    with _http(qdrant_cluster, other) as http:
        if not any(s["shard_id"] == 0 for s in layout[other]["local_shards"]):
            assert http.post("/collections/sh/shards/0/snapshots").status_code == 404
    with _http(qdrant_cluster, holder) as http:
        snap = http.post("/collections/sh/shards/0/snapshots", params={"wait": "true"}).json()[
            "result"
        ]
        listed = http.get("/collections/sh/shards/0/snapshots").json()["result"]
        assert [s["name"] for s in listed] == [snap["name"]]
        data = http.get(f"/collections/sh/shards/0/snapshots/{snap['name']}").content
        assert hashlib.sha256(data).hexdigest() == snap["checksum"]
        uploaded = http.post(
            "/collections/sh/shards/0/snapshots/upload",
            params={"priority": "snapshot", "checksum": snap["checksum"], "wait": "true"},
            files={"snapshot": ("s.snapshot", io.BytesIO(data))},
        )
        assert uploaded.status_code == 200, uploaded.text
        assert qdrant_cluster.points_count("sh") == 60
        assert http.delete(f"/collections/sh/shards/0/snapshots/{snap['name']}").status_code == 200
        assert http.get("/collections/sh/shards/0/snapshots").json()["result"] == []


def test_dead_replica_is_reported(qdrant_cluster: Any) -> None:
    cluster = require_test_cluster(qdrant_cluster)
    cluster.create_collection("dead", DIM, points=20, shard_number=1, replication_factor=2)
    first, second = cluster.peer_ids[0], cluster.peer_ids[1]
    cluster.set_replica_state("dead", 0, first, "Dead")
    info = httpx.get(f"{cluster.urls[2]}/collections/dead/cluster").json()["result"]
    states = {r["peer_id"]: r["state"] for r in info["remote_shards"]}
    assert states == {first: "Dead", second: "Active"}
    assert cluster.points_count("dead") == 20  # served by the Active replica


def test_upload_is_logged_with_shard_and_priority(qdrant_cluster: Any) -> None:
    cluster = require_test_cluster(qdrant_cluster)
    cluster.create_collection("log", DIM, points=10, shard_number=1)
    holder = cluster.servers[0]
    snap = httpx.post(f"{holder.url}/collections/log/shards/0/snapshots").json()["result"]
    data = httpx.get(f"{holder.url}/collections/log/shards/0/snapshots/{snap['name']}").content
    response = httpx.post(
        f"{holder.url}/collections/log/shards/0/snapshots/upload",
        params={"priority": "replica"},
        files={"snapshot": ("s", io.BytesIO(data))},
        timeout=60,
    )
    assert response.status_code == 200
    assert holder.uploads[-1]["shard_id"] == 0 and holder.uploads[-1]["priority"] == "replica"
    assert holder.uploads[-1]["sha256"] == snap["checksum"]
