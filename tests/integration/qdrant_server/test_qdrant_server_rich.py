"""The test server's sparse vectors, multivectors, quantization and payload
indexes: accepted as Qdrant's API describes them, built by the real engine
(the snapshot's segments hold the HNSW graphs, quantized vectors, sparse
inverted index and payload index files), refused where the engine cannot."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import httpx
from tests.qdrant_server import QdrantTestServer

HYBRID = {
    "vectors": {
        "dense": {
            "size": 4,
            "distance": "Cosine",
            "quantization_config": {"scalar": {"type": "int8", "always_ram": True}},
        },
        "colbert": {"size": 4, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
    },
    "sparse_vectors": {"text": {"modifier": "idf"}},
    "optimizers_config": {"indexing_threshold": 1},
}


def _call(server: QdrantTestServer, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, timeout=60)


def _fill(server: QdrantTestServer, name: str, points: int = 40) -> None:
    batch = [
        {
            "id": i,
            "vector": {
                "dense": [1.0, i / 10, -1.0, (i % 3) / 3],
                "colbert": [[1.0, 0.0, i / 40, 0.5], [0.0, 1.0, 0.5, i / 40]],
                "text": {"indices": [i, 500 + i % 4], "values": [1.0, 0.5]},
            },
            "payload": {"kw": f"k{i % 4}", "n": i},
        }
        for i in range(points)
    ]
    res = _call(server, "PUT", f"/collections/{name}/points?wait=true", {"points": batch})
    assert res.status_code == 200, res.text


def test_hybrid_collection_is_built_by_the_engine_and_snapshotted(
    qdrant_server: QdrantTestServer,
) -> None:
    server = qdrant_server
    assert _call(server, "PUT", "/collections/h", HYBRID).status_code == 200
    _fill(server, "h")
    for field, schema in (("kw", "keyword"), ("n", {"type": "integer", "range": True})):
        body = {"field_name": field, "field_schema": schema}
        assert _call(server, "PUT", "/collections/h/index?wait=true", body).status_code == 200
    assert server.optimize("h")
    info = _call(server, "GET", "/collections/h").json()["result"]
    assert info["config"]["params"]["sparse_vectors"] == {"text": {"modifier": "idf"}}
    assert info["payload_schema"] == {
        "kw": {"data_type": "keyword", "points": 40},
        "n": {"data_type": "integer", "params": {"type": "integer", "range": True}, "points": 40},
    }
    # searches by each kind of vector find the point
    for using, query in (
        ("text", {"indices": [7, 503], "values": [1.0, 0.5]}),
        ("dense", [1.0, 0.7, -1.0, 1 / 3]),
    ):
        res = _call(
            server,
            "POST",
            "/collections/h/points/query",
            {"query": query, "using": using, "limit": 1},
        )
        assert res.json()["result"]["points"][0]["id"] == 7, (using, res.text)
    got = _call(server, "POST", "/collections/h/points", {"ids": [7], "with_vector": True})
    vector = got.json()["result"][0]["vector"]
    assert vector["text"] == {"indices": [7, 503], "values": [1.0, 0.5]}
    assert len(vector["colbert"]) == 2
    # the snapshot holds what the engine built
    snap = _call(server, "POST", "/collections/h/snapshots").json()["result"]["name"]
    data = _call(server, "GET", f"/collections/h/snapshots/{snap}").content
    files: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        for member in outer:
            if member.name == "payload_index.json":
                assert b'"kw": "keyword"' in outer.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith(".tar") and "/segments/" in member.name:
                with tarfile.open(fileobj=outer.extractfile(member)) as inner:
                    files |= {m.name.rsplit("/", 1)[-1] for m in inner}
    assert {"quantized.data", "graph.bin", "inverted_index.dat"} <= files, files


def test_what_the_engine_cannot_build_and_names_qdrant_refuses_answer_errors(
    qdrant_server: QdrantTestServer,
) -> None:
    server = qdrant_server
    turbo4 = {"vectors": {"size": 4, "distance": "Dot", "datatype": "turbo4"}}
    res = _call(server, "PUT", "/collections/t", turbo4)
    assert res.status_code == 400 and "turbo4" in res.text
    text = {"field_name": "t", "field_schema": {"type": "text", "tokenizer": "word"}}
    assert (
        _call(server, "PUT", "/collections/h/index", text).status_code == 404
    )  # no such collection
    assert "t" not in server.collection_names()
    plain = {"vectors": {"size": 4, "distance": "Dot"}}
    assert _call(server, "PUT", "/collections/" + "n" * 256, plain).status_code == 422
    assert _call(server, "PUT", "/collections/" + "n" * 255, plain).status_code == 200
    assert _call(server, "PUT", "/collections/" + "文" * 86, plain).status_code == 500  # 258 bytes
    assert _call(server, "PUT", "/collections/" + "文" * 85, plain).status_code == 200
    assert _call(server, "PUT", "/collections/" + "n" * 255 + "/index", text).status_code == 400
