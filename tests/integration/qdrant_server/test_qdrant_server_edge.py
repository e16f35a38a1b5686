"""Snapshots of the test server hold real segment data that qdrant-edge loads.

This is what seawall's `verify --deep` relies on; the recipe is documented in
tests/qdrant_server/README.md.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import httpx
import qdrant_edge as qe
from tests.qdrant_server import vector_for

DIM = 8
SEED = 11


def _client(handle: Any) -> httpx.Client:
    headers = {"api-key": handle.api_key} if handle.api_key else {}
    return httpx.Client(base_url=handle.url, headers=headers, timeout=60)


def _load_and_check(shard_dir: Path, expected: int) -> None:
    shard = qe.EdgeShard.load(str(shard_dir))
    try:
        assert shard.count(qe.CountRequest(exact=True)) == expected
        hits = shard.query(
            qe.QueryRequest(
                limit=1, query=qe.Query.Nearest(vector_for(7, DIM, SEED)), with_payload=True
            )
        )
        assert hits[0].id == 7
        assert hits[0].payload == {"i": 7, "group": "g0"}
    finally:
        shard.close()


def test_shard_snapshot_loads_with_edge_shard(qdrant_server: Any, tmp_path: Path) -> None:
    qdrant_server.create_collection("edge", DIM, points=250, seed=SEED)
    with _client(qdrant_server) as http:
        snap = http.post("/collections/edge/shards/0/snapshots").json()["result"]
        archive = tmp_path / "shard.snapshot"
        archive.write_bytes(
            http.get(f"/collections/edge/shards/0/snapshots/{snap['name']}").content
        )
        http.delete(f"/collections/edge/shards/0/snapshots/{snap['name']}")
    qe.EdgeShard.unpack_snapshot(str(archive), str(tmp_path / "unpacked"))
    _load_and_check(tmp_path / "unpacked", 250)


def test_collection_snapshot_shard_dir_loads_with_edge_shard(
    qdrant_server: Any, tmp_path: Path
) -> None:
    """A collection snapshot's shard directory, re-rooted into its own tar,
    is a shard snapshot EdgeShard can unpack (the `verify --deep` recipe)."""
    qdrant_server.create_collection("edge2", DIM, points=120, seed=SEED)
    with _client(qdrant_server) as http:
        snap = http.post("/collections/edge2/snapshots").json()["result"]
        archive = tmp_path / "collection.snapshot"
        archive.write_bytes(http.get(f"/collections/edge2/snapshots/{snap['name']}").content)
        http.delete(f"/collections/edge2/snapshots/{snap['name']}")
    shard_tar = tmp_path / "shard0.tar"
    with tarfile.open(archive) as outer, tarfile.open(shard_tar, "w") as out:
        for member in outer:
            if member.name.startswith("0/") and member.name != "0/":
                data = outer.extractfile(member) if member.isfile() else None
                member.name = member.name[len("0/") :]
                out.addfile(member, data)
    qe.EdgeShard.unpack_snapshot(str(shard_tar), str(tmp_path / "unpacked"))
    _load_and_check(tmp_path / "unpacked", 120)
