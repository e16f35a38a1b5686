"""Snapshot lifecycle of the Qdrant test server, over real HTTP.

These run against the test server, or against a real Qdrant when QDRANT_URL
is set (where the archive-structure checks hold as well).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from typing import Any

import httpx
import pytest
from tests.qdrant_server import vector_for

DIM = 8


def client(handle: Any) -> httpx.Client:
    headers = {"api-key": handle.api_key} if handle.api_key else {}
    return httpx.Client(base_url=handle.url, headers=headers, timeout=60)


def create_snapshot(http: httpx.Client, collection: str) -> dict[str, Any]:
    response = http.post(f"/collections/{collection}/snapshots", params={"wait": "true"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_root_health_and_collection_info(qdrant_server: Any) -> None:
    qdrant_server.create_collection("info", DIM, points=120, seed=3)
    with client(qdrant_server) as http:
        root = http.get("/").json()
        assert root["version"] == qdrant_server.version
        assert http.get("/readyz").status_code == 200
        assert http.get("/healthz").text
        names = [c["name"] for c in http.get("/collections").json()["result"]["collections"]]
        assert "info" in names
        info = http.get("/collections/info").json()["result"]
        assert info["points_count"] == 120
        assert info["config"]["params"]["vectors"] == {"size": DIM, "distance": "Cosine"}
        missing = http.get("/collections/nope")
        assert missing.status_code == 404
        assert "error" in missing.json()["status"]


def test_create_list_download_range_delete(qdrant_server: Any) -> None:
    qdrant_server.create_collection("snap", DIM, points=200, seed=1)
    with client(qdrant_server) as http:
        snap = create_snapshot(http, "snap")
        assert snap["name"].endswith(".snapshot")
        listed = http.get("/collections/snap/snapshots").json()["result"]
        assert [s["name"] for s in listed] == [snap["name"]]
        assert listed[0]["checksum"] == snap["checksum"]
        assert listed[0]["size"] == snap["size"]

        url = f"/collections/snap/snapshots/{snap['name']}"
        full = http.get(url)
        assert full.status_code == 200
        assert full.headers["content-type"] == "application/octet-stream"
        assert len(full.content) == snap["size"]
        assert hashlib.sha256(full.content).hexdigest() == snap["checksum"]

        part = http.get(url, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 1000-1999/{snap['size']}"
        assert part.content == full.content[1000:2000]
        tail = http.get(url, headers={"Range": f"bytes={snap['size'] - 10}-"})
        assert tail.status_code == 206 and tail.content == full.content[-10:]
        suffix = http.get(url, headers={"Range": "bytes=-7"})
        assert suffix.status_code == 206 and suffix.content == full.content[-7:]
        beyond = http.get(url, headers={"Range": f"bytes={snap['size']}-"})
        assert beyond.status_code == 416

        deleted = http.delete(url)
        assert deleted.status_code == 200 and deleted.json()["result"] is True
        assert http.get("/collections/snap/snapshots").json()["result"] == []
        assert http.get(url).status_code == 404


def test_wait_false_answers_202_without_name_then_appears(qdrant_server: Any) -> None:
    qdrant_server.create_collection("async", DIM, points=50, seed=2)
    with client(qdrant_server) as http:
        response = http.post("/collections/async/snapshots", params={"wait": "false"})
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "accepted"
        assert body.get("result") is None
        deadline = time.monotonic() + 30
        listed: list[Any] = []
        while time.monotonic() < deadline and not listed:
            listed = http.get("/collections/async/snapshots").json()["result"]
            time.sleep(0.05)
        assert len(listed) == 1 and listed[0]["checksum"]
        http.delete(f"/collections/async/snapshots/{listed[0]['name']}")


def test_archive_has_qdrant_layout(qdrant_server: Any) -> None:
    qdrant_server.create_collection("layout", DIM, points=64, seed=4, shard_number=2)
    with client(qdrant_server) as http:
        snap = create_snapshot(http, "layout")
        data = http.get(f"/collections/layout/snapshots/{snap['name']}").content
        http.delete(f"/collections/layout/snapshots/{snap['name']}")
    # a plain tar ("r:" refuses compression)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as outer:
        names = outer.getnames()
        assert "config.json" in names
        config = json.load(outer.extractfile("config.json"))  # type: ignore[arg-type]
        assert config["params"]["vectors"]["size"] == DIM
        for shard in ("0", "1"):
            state = json.load(outer.extractfile(f"{shard}/replica_state.json"))  # type: ignore[arg-type]
            assert state["is_local"] is True
            nested = [n for n in names if n.startswith(f"{shard}/segments/") and n.endswith(".tar")]
            assert nested, f"shard {shard} has no nested segment tar"
            seg_file = outer.extractfile(nested[0])
            with tarfile.open(fileobj=seg_file, mode="r:") as segment:
                inner = segment.getnames()
            assert "snapshot/files/segment.json" in inner
            assert any(n.startswith("snapshot/files/vector_storage/") for n in inner)


def test_upload_restores_collection_and_points(qdrant_server: Any) -> None:
    qdrant_server.create_collection("src", DIM, points=300, seed=5)
    with client(qdrant_server) as http:
        snap = create_snapshot(http, "src")
        data = http.get(f"/collections/src/snapshots/{snap['name']}").content
        http.delete(f"/collections/src/snapshots/{snap['name']}")
        response = http.post(
            "/collections/restored/snapshots/upload",
            params={"priority": "snapshot", "checksum": snap["checksum"], "wait": "true"},
            files={"snapshot": ("src.snapshot", io.BytesIO(data), "application/octet-stream")},
        )
        assert response.status_code == 200, response.text
        assert response.json()["result"] is True
        count = http.post("/collections/restored/points/count", json={"exact": True}).json()[
            "result"
        ]["count"]
        assert count == 300
        # the restored data answers a sample search with the stored vector itself on top
        hits = http.post(
            "/collections/restored/points/query", json={"query": vector_for(42, DIM, 5), "limit": 1}
        ).json()["result"]["points"]
        assert hits[0]["id"] == 42
        http.delete("/collections/restored")


def test_upload_with_wrong_checksum_is_refused(qdrant_server: Any) -> None:
    qdrant_server.create_collection("sumsrc", DIM, points=10, seed=6)
    with client(qdrant_server) as http:
        snap = create_snapshot(http, "sumsrc")
        data = http.get(f"/collections/sumsrc/snapshots/{snap['name']}").content
        http.delete(f"/collections/sumsrc/snapshots/{snap['name']}")
        response = http.post(
            "/collections/sumdst/snapshots/upload",
            params={"checksum": "0" * 64},
            files={"snapshot": ("x.snapshot", io.BytesIO(data))},
        )
        assert response.status_code == 400
        assert "checksum" in response.json()["status"]["error"].lower()
        assert http.get("/collections/sumdst").status_code == 404


def test_upload_of_garbage_is_a_clean_400(qdrant_server: Any) -> None:
    with client(qdrant_server) as http:
        response = http.post(
            "/collections/junk/snapshots/upload", files={"snapshot": ("x", b"not a tar" * 100)}
        )
        assert response.status_code == 400
        assert response.json()["status"]["error"]


def test_chunked_streamed_upload(qdrant_server: Any) -> None:
    """Uploads without Content-Length (chunked transfer) stream to disk too."""
    qdrant_server.create_collection("chunk", DIM, points=40, seed=7)
    with client(qdrant_server) as http:
        snap = create_snapshot(http, "chunk")
        data = http.get(f"/collections/chunk/snapshots/{snap['name']}").content
        http.delete(f"/collections/chunk/snapshots/{snap['name']}")
        boundary = "seawallboundary"

        def body() -> Any:
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="snapshot"; filename="c.snapshot"\r\n'.encode()
            yield b"Content-Type: application/octet-stream\r\n\r\n"
            for i in range(0, len(data), 1 << 20):
                yield data[i : i + (1 << 20)]
            yield f"\r\n--{boundary}--\r\n".encode()

        response = http.post(
            "/collections/chunk2/snapshots/upload",
            params={"checksum": snap["checksum"]},
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 200, response.text
        assert (
            http.post("/collections/chunk2/points/count", json={}).json()["result"]["count"] == 40
        )
        http.delete("/collections/chunk2")


def test_full_storage_snapshot(qdrant_server: Any) -> None:
    if getattr(qdrant_server, "is_real", False):
        pytest.skip("would snapshot every collection of the real server")
    qdrant_server.create_collection("fa", DIM, points=5, seed=1)
    qdrant_server.create_collection("fb", DIM, points=6, seed=2)
    with client(qdrant_server) as http:
        created = http.post("/snapshots", params={"wait": "true"})
        assert created.status_code == 200, created.text
        snap = created.json()["result"]
        assert [s["name"] for s in http.get("/snapshots").json()["result"]] == [snap["name"]]
        data = http.get(f"/snapshots/{snap['name']}").content
        assert hashlib.sha256(data).hexdigest() == snap["checksum"]
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as outer:
            mapping = json.load(outer.extractfile("config.json"))["collections_mapping"]  # type: ignore[arg-type]
            members = outer.getnames()
        assert set(mapping) == {"fa", "fb"}
        assert all(name in members for name in mapping.values())
        assert http.delete(f"/snapshots/{snap['name']}").json()["result"] is True
        assert http.get("/snapshots").json()["result"] == []


def test_recover_from_url(qdrant_server: Any) -> None:
    """``PUT .../snapshots/recover`` fetches the snapshot from a URL (here: itself)."""
    qdrant_server.create_collection("rsrc", DIM, points=33, seed=8)
    with client(qdrant_server) as http:
        snap = create_snapshot(http, "rsrc")
        location = f"{qdrant_server.url}/collections/rsrc/snapshots/{snap['name']}"
        body: dict[str, Any] = {
            "location": location,
            "priority": "snapshot",
            "checksum": snap["checksum"],
        }
        if qdrant_server.api_key:
            body["api_key"] = qdrant_server.api_key
        response = http.put("/collections/rdst/snapshots/recover", json=body)
        assert response.status_code == 200, response.text
        assert http.post("/collections/rdst/points/count", json={}).json()["result"]["count"] == 33
        http.delete(f"/collections/rsrc/snapshots/{snap['name']}")
        http.delete("/collections/rdst")


def test_upload_refuses_path_traversal(qdrant_server: Any, tmp_path: Any) -> None:
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with client(qdrant_server) as http:
        response = http.post(
            "/collections/evil/snapshots/upload", files={"snapshot": ("e", evil.getvalue())}
        )
    assert response.status_code == 400
    if not getattr(qdrant_server, "is_real", False):
        assert not list(qdrant_server.data_dir.parent.glob("escaped.txt"))
        assert not list(qdrant_server.data_dir.rglob("escaped.txt"))


def test_refused_upload_keeps_the_client_usable(qdrant_server: Any) -> None:
    """An answer sent before the upload body was read closes the connection
    (``Connection: close``) instead of reading the rest as the next request."""
    with client(qdrant_server) as http:
        refused = http.post(
            "/collections/missing/shards/0/snapshots/upload",
            files={"snapshot": ("s", b"\0" * (4 << 20))},
        )
        assert refused.status_code == 404
        assert refused.headers.get("connection") == "close"
        assert http.get("/collections").status_code == 200


def test_concurrent_backups_of_several_collections(qdrant_server: Any) -> None:
    """seawall backs collections up concurrently: the server must cope."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"par{i}" for i in range(4)]
    for i, name in enumerate(names):
        qdrant_server.create_collection(name, DIM, points=20 + i, seed=i)

    def backup(name: str) -> tuple[str, bool]:
        with client(qdrant_server) as http:
            snap = create_snapshot(http, name)
            data = http.get(f"/collections/{name}/snapshots/{snap['name']}").content
            ok = hashlib.sha256(data).hexdigest() == snap["checksum"]
            assert http.delete(f"/collections/{name}/snapshots/{snap['name']}").status_code == 200
            return name, ok

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(backup, names))
    assert results == dict.fromkeys(names, True)
    with client(qdrant_server) as http:
        for name in names:
            assert http.get(f"/collections/{name}/snapshots").json()["result"] == []


def test_restore_across_versions(qdrant_server: Any) -> None:
    """Qdrant restores a snapshot of the same or the previous minor only."""
    if getattr(qdrant_server, "is_real", False):
        pytest.skip("needs servers of several versions")
    from tests.qdrant_server import QdrantTestServer

    qdrant_server.create_collection("ver", DIM, points=12, seed=9)
    with client(qdrant_server) as http:
        snap = create_snapshot(http, "ver")
        data = http.get(f"/collections/ver/snapshots/{snap['name']}").content
    for version, expected in (("1.20.3", 200), ("1.21.0", 400), ("1.18.0", 400), ("2.19.0", 400)):
        with QdrantTestServer(version=version) as other:
            response = httpx.post(
                f"{other.url}/collections/ver/snapshots/upload",
                files={"snapshot": ("v.snapshot", io.BytesIO(data))},
                timeout=60,
            )
            assert response.status_code == expected, (version, response.text)
            if expected == 400:
                assert "version" in response.json()["status"]["error"]
            other.assert_no_spec_violations()
