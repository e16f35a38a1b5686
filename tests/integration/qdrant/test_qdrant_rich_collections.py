"""The full Qdrant cycle on collections that are more than one dense vector.

Sparse vectors (hybrid search), multivectors (ColBERT-style late
interaction), quantization (scalar, product, binary), HNSW and optimizer
settings and payload indexes are what production collections carry. Each is
created through Qdrant's REST API, filled, optimized (so the snapshot holds
indexed, quantized segments the real engine wrote), then backed up, deeply
verified, restored beside the original and drilled. After the restore the
points (ids, payloads and every vector), the collection's config and its
payload indexes must equal the original's exactly.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from seawall.app.backup import qdrant_backup as backup
from seawall.catalog.models import Manifest
from seawall.qdrant.drill import drill_collection
from seawall.qdrant.restore import restore
from seawall.qdrant.select import resolve
from seawall.qdrant.verify import verify_backup

from .conftest import MakeCtx

POINTS = 120


def http(handle: Any, method: str, path: str, body: Any = None) -> Any:
    headers = {"api-key": handle.api_key} if getattr(handle, "api_key", None) else {}
    res = httpx.request(method, handle.url + path, json=body, headers=headers, timeout=120)
    assert res.status_code < 300, (res.status_code, res.text)
    return res.json()["result"]


def _dense(rng: random.Random, dim: int) -> list[float]:
    return [round(rng.uniform(-1.0, 1.0), 4) for _ in range(dim)]


def _multi(rng: random.Random, dim: int) -> list[list[float]]:
    return [_dense(rng, dim) for _ in range(rng.randint(2, 4))]


def _sparse(pid: int) -> dict[str, list[Any]]:
    # distinct term sets: each point's own sparse vector finds it first
    return {"indices": [pid, 1000 + pid % 13], "values": [2.0, 0.25]}


def _payload(pid: int) -> dict[str, Any]:
    return {"i": pid, "kw": f"k{pid % 5}", "price": pid / 4, "tags": ["a", f"t{pid % 3}"]}


SPARSE_ONLY: dict[str, Any] = {
    "body": {"vectors": {}, "sparse_vectors": {"text": {"modifier": "idf"}}},
    "vector": lambda rng, pid: {"text": _sparse(pid)},
}
MULTIVECTOR: dict[str, Any] = {
    "body": {
        "vectors": {
            "size": 4,
            "distance": "Cosine",
            "multivector_config": {"comparator": "max_sim"},
        },
        "optimizers_config": {"indexing_threshold": 1},
    },
    "vector": lambda rng, pid: _multi(rng, 4),
}
HYBRID: dict[str, Any] = {
    "body": {
        "vectors": {
            "dense": {
                "size": 8,
                "distance": "Cosine",
                "quantization_config": {
                    "scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}
                },
                "hnsw_config": {"m": 8, "ef_construct": 64},
            },
            "colbert": {
                "size": 4,
                "distance": "Dot",
                "multivector_config": {"comparator": "max_sim"},
                "datatype": "float16",
            },
        },
        "sparse_vectors": {
            "text": {"modifier": "idf", "index": {"full_scan_threshold": 50, "on_disk": True}}
        },
        "quantization_config": {"binary": {"always_ram": True}},
        "hnsw_config": {"m": 12, "ef_construct": 80, "full_scan_threshold": 20},
        "optimizers_config": {"indexing_threshold": 1, "default_segment_number": 1},
    },
    "vector": lambda rng, pid: {
        "dense": _dense(rng, 8),
        "colbert": _multi(rng, 4),
        "text": _sparse(pid),
    },
    "indexes": [
        ("kw", "keyword"),
        ("i", {"type": "integer", "lookup": True, "range": True}),
        ("price", "float"),
    ],
}
PRODUCT: dict[str, Any] = {
    "body": {
        "vectors": {"size": 16, "distance": "Euclid"},
        "quantization_config": {"product": {"compression": "x16", "always_ram": False}},
        "optimizers_config": {"indexing_threshold": 1},
    },
    "vector": lambda rng, pid: _dense(rng, 16),
    "indexes": [("tags", "keyword")],
}
TURBO: dict[str, Any] = {
    "body": {
        "vectors": {"size": 16, "distance": "Dot", "on_disk": True},
        "quantization_config": {"turbo": {"bits": "bits4", "always_ram": True}},
        "optimizers_config": {"indexing_threshold": 1},
    },
    "vector": lambda rng, pid: _dense(rng, 16),
    "indexes": [("i", "integer"), ("kw", {"type": "keyword", "is_tenant": True})],
}
KINDS = {
    "sparse": SPARSE_ONLY,
    "multivector": MULTIVECTOR,
    "hybrid": HYBRID,
    "product": PRODUCT,
    "turbo": TURBO,
}
#: vectors per point: each one is searched by verify --deep, restore and drill
VECTORS = {"sparse": 1, "multivector": 1, "hybrid": 3, "product": 1, "turbo": 1}


def make_collection(handle: Any, name: str, spec: dict[str, Any], points: int = POINTS) -> None:
    """Create ``name`` as ``spec`` says, fill it, index it and optimize it."""
    body = {**spec["body"]}
    if getattr(handle, "faults", None) is None:  # a real Qdrant: leave the optimizers alone
        body.pop("optimizers_config", None)
    http(handle, "PUT", f"/collections/{name}", body)
    rng = random.Random(name)
    batch = [
        {"id": pid, "vector": spec["vector"](rng, pid), "payload": _payload(pid)}
        for pid in range(points)
    ]
    http(handle, "PUT", f"/collections/{name}/points?wait=true", {"points": batch})
    for field_name, schema in spec.get("indexes", []):
        http(
            handle,
            "PUT",
            f"/collections/{name}/index?wait=true",
            {"field_name": field_name, "field_schema": schema},
        )
    if hasattr(handle, "optimize"):
        handle.optimize(name)


def all_points(handle: Any, name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = None
    while True:
        page = http(
            handle,
            "POST",
            f"/collections/{name}/points/scroll",
            {"limit": 50, "offset": offset, "with_payload": True, "with_vector": True},
        )
        out.extend(page["points"])
        offset = page.get("next_page_offset")
        if offset is None:
            return out


def comparable_config(handle: Any, name: str) -> dict[str, Any]:
    info = http(handle, "GET", f"/collections/{name}")
    config = info["config"]
    return {
        "config": {
            k: config.get(k)
            for k in ("params", "hnsw_config", "optimizer_config", "quantization_config")
        },
        "payload_schema": info["payload_schema"],
    }


def _backed_up(ctx: Any, name: str) -> Manifest:
    run = backup(ctx, [name])
    assert [r.error for r in run.results] == [None]
    m = run.results[0].manifest
    assert m is not None and m.ok and m.verification is not None and m.verification.ok
    return m


@pytest.mark.parametrize("kind", list(KINDS))
def test_full_cycle_restores_points_vectors_config_and_indexes_exactly(
    qdrant_server: Any, make_ctx: MakeCtx, kind: str
) -> None:
    pytest.importorskip("qdrant_edge")
    name = f"rich_{kind}"
    make_collection(qdrant_server, name, KINDS[kind])
    before_points = all_points(qdrant_server, name)
    before_config = comparable_config(qdrant_server, name)
    assert len(before_points) == POINTS
    ctx = make_ctx(qdrant_server)
    m = _backed_up(ctx, name)
    sample = (m.qdrant.sample if m.qdrant else None) or {}
    assert sample.get("points"), "no sample recorded"

    deep = verify_backup(ctx, ctx.storage, m, deep=True, write_back=True)
    assert deep.ok, deep.verification.message
    checks = " ".join(deep.verification.checks)
    assert f"{POINTS} points" in checks
    searches = len(sample["points"]) * VECTORS[kind]
    assert f"{searches} sample search(es) found their points" in checks, checks

    restored = restore(ctx, resolve(ctx, m.id), target=f"{name}_copy")
    assert restored.points_count == POINTS
    assert f"{searches} sample search(es) found their points" in restored.checks, restored.checks
    assert all_points(qdrant_server, f"{name}_copy") == before_points
    assert comparable_config(qdrant_server, f"{name}_copy") == before_config

    # the original, deleted and restored under its own name
    http(qdrant_server, "DELETE", f"/collections/{name}")
    restore(ctx, resolve(ctx, m.id))
    assert all_points(qdrant_server, name) == before_points
    assert comparable_config(qdrant_server, name) == before_config

    target = drill_collection(ctx, m, "20991231T235959Z-ab01")
    assert target.passed, [(c.name, c.status, c.detail) for c in target.checks]
    drilled = next(c for c in target.checks if c.name == "sample searches")
    assert drilled.status == "passed" and drilled.detail.startswith(f"{searches} "), drilled


def test_cluster_restore_of_a_deleted_collection_recreates_its_config_and_indexes(
    qdrant_cluster: Any, make_ctx: MakeCtx
) -> None:
    """Shard snapshots carry segments, not the collection: when the collection is
    gone (a new cluster, or deleted) seawall creates it from the recorded config
    first. Quantization, HNSW and optimizer settings and the payload indexes
    must come back too, or every segment Qdrant builds after the restore is
    unquantized and unindexed (a filter on the field is then a full scan, and
    refused under strict mode)."""
    from tests.qdrant_server.fixtures import require_test_cluster

    cluster = require_test_cluster(qdrant_cluster)
    name = "rich_cluster"
    spec = {**HYBRID, "body": {**HYBRID["body"], "shard_number": 2}}
    make_collection(cluster.servers[0], name, spec)
    before_points = all_points(cluster.servers[0], name)
    before_config = comparable_config(cluster.servers[0], name)
    before_schema = dict(cluster.state.get(name).payload_schema)
    assert set(before_schema) == {"kw", "i", "price"}
    ctx = make_ctx(cluster.servers[0], qdrant_peer_urls=cluster.urls)
    m = _backed_up(ctx, name)
    assert m.kind == "shard-snapshot" and len(m.artifacts) == 2
    deep = verify_backup(ctx, ctx.storage, m, deep=True, write_back=True)
    assert deep.ok, deep.verification.message
    assert "deep: 9 sample search(es) found their points" in deep.verification.checks
    drilled = drill_collection(ctx, m, "20991231T235959Z-ab03")
    assert drilled.passed, [(c.name, c.status, c.detail) for c in drilled.checks]

    http(cluster.servers[0], "DELETE", f"/collections/{name}")
    res = restore(ctx, resolve(ctx, m.id))
    assert res.points_count == POINTS
    assert all_points(cluster.servers[0], name) == before_points
    assert comparable_config(cluster.servers[0], name) == before_config
    # the collection's own index schema, which new segments are built with
    assert cluster.state.get(name).payload_schema == before_schema
    # and the proof: points written after the restore are indexed too
    http(
        cluster.servers[0],
        "PUT",
        f"/collections/{name}/points?wait=true",
        {
            "points": [
                {
                    "id": 10_000,
                    "vector": HYBRID["vector"](random.Random(1), 10_000),
                    "payload": _payload(10_000),
                }
            ]
        },
    )
    schema = http(cluster.servers[0], "GET", f"/collections/{name}")["payload_schema"]
    assert {k: v["points"] for k, v in schema.items()} == {
        "kw": POINTS + 1,
        "i": POINTS + 1,
        "price": POINTS + 1,
    }


def test_a_late_interaction_sample_keeps_the_manifest_small(
    qdrant_server: Any, make_ctx: MakeCtx
) -> None:
    """ColBERT-style points hold a 128-dimensional vector per token (hundreds of
    them). The sample recorded every row of 3 such points in the manifest:
    ~0.8 MB here, megabytes on real documents, read at every catalog scan and
    exporter scrape ("real manifests are a few KiB"). The sample keeps the first
    rows only; its searches (and the top hits recorded for them) use just those
    rows, so the checks after a restore are unchanged in strength."""
    pytest.importorskip("qdrant_edge")
    name = "colbert"
    body = {
        "vectors": {
            "size": 128,
            "distance": "Cosine",
            "multivector_config": {"comparator": "max_sim"},
        }
    }
    http(qdrant_server, "PUT", f"/collections/{name}", body)
    rng = random.Random(5)
    for start in range(0, 12, 4):
        batch = [
            {"id": pid, "vector": [_dense(rng, 128) for _ in range(100)], "payload": {"i": pid}}
            for pid in range(start, start + 4)
        ]
        http(qdrant_server, "PUT", f"/collections/{name}/points?wait=true", {"points": batch})
    ctx = make_ctx(qdrant_server)
    m = _backed_up(ctx, name)
    assert len(m.model_dump_json()) < 64 * 1024, len(m.model_dump_json())
    sample = (m.qdrant.sample if m.qdrant else None) or {}
    assert sample["points"] and all(p["tops"][""] for p in sample["points"])
    assert all(len(p["vector"]) == 4 for p in sample["points"])  # of 100 rows
    deep = verify_backup(ctx, ctx.storage, m, deep=True, write_back=True)
    assert deep.ok, deep.verification.message
    assert "deep: 3 sample search(es) found their points" in deep.verification.checks
    target = drill_collection(ctx, m, "20991231T235959Z-ab02")
    assert target.passed, [(c.name, c.status, c.detail) for c in target.checks]
