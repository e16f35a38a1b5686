"""Spec validation and API-key handling of the Qdrant test server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.qdrant_server import QdrantTestServer
from tests.qdrant_server.fixtures import TEST_API_KEY


def _test_server_only(handle: Any) -> QdrantTestServer:
    if getattr(handle, "is_real", False):
        pytest.skip("spec violations are recorded by the test server only")
    assert isinstance(handle, QdrantTestServer)
    return handle


def test_valid_traffic_records_no_violation(qdrant_server: Any) -> None:
    server = _test_server_only(qdrant_server)
    server.create_collection("ok", 4, points=10)
    with httpx.Client(base_url=server.url) as http:
        http.get("/collections/ok")
        http.post("/collections/ok/points/count", json={"exact": True})
        http.put(
            "/collections/ok/points",
            params={"wait": "true"},
            json={"points": [{"id": 99, "vector": [0.1, 0.2, 0.3, 0.4]}]},
        )
        http.post("/collections/ok/points/scroll", json={"limit": 3})
    assert server.spec_violations == []
    assert server.points_count("ok") == 11


def test_bad_query_parameter_is_rejected_and_recorded(qdrant_server: Any) -> None:
    server = _test_server_only(qdrant_server)
    server.create_collection("bad", 4)
    response = httpx.post(f"{server.url}/collections/bad/snapshots", params={"wait": "perhaps"})
    assert response.status_code == 400
    assert "error" in response.json()["status"]
    assert len(server.spec_violations) == 1
    violation = server.spec_violations[0]
    assert violation.kind == "request" and "wait" in violation.message
    assert server.list_snapshots("bad") == []  # nothing was executed
    server.spec_violations.clear()


def test_bad_body_and_unknown_path_are_recorded(qdrant_server: Any) -> None:
    server = _test_server_only(qdrant_server)
    server.create_collection("body", 4)
    bad_body = httpx.post(f"{server.url}/collections/body/points/count", json={"exact": "yes"})
    assert bad_body.status_code == 422
    unknown = httpx.get(f"{server.url}/collections/body/snapshotz")
    assert unknown.status_code == 404
    kinds = [(v.kind, v.path) for v in server.spec_violations]
    assert kinds == [
        ("request", "/collections/body/points/count"),
        ("request", "/collections/body/snapshotz"),
    ]
    server.spec_violations.clear()


def test_response_validator_catches_a_bad_answer(qdrant_server: Any) -> None:
    """The checker the handler runs on every JSON answer rejects a malformed one."""
    server = _test_server_only(qdrant_server)
    bad = b'{"result": {"name": "x.snapshot", "size": -1}, "status": "ok", "time": 0.1}'
    good = b'{"result": {"name": "x.snapshot", "size": 1, "checksum": null}, "status": "ok", "time": 0.1}'
    path = "/collections/c/snapshots"
    assert (
        server.validator.validate_response("POST", path, [], 200, "application/json", bad)
        is not None
    )
    assert (
        server.validator.validate_response("POST", path, [], 200, "application/json", good) is None
    )


def test_missing_and_wrong_api_key_answer_plain_text(qdrant_server_with_key: Any) -> None:
    url = qdrant_server_with_key.url
    key = qdrant_server_with_key.api_key
    missing = httpx.get(f"{url}/collections")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("text/plain")
    assert missing.text and not missing.text.lstrip().startswith("{")
    wrong = httpx.get(f"{url}/collections", headers={"api-key": key + "-wrong"})
    assert wrong.status_code == 403
    assert wrong.headers["content-type"].startswith("text/plain")
    assert not wrong.text.lstrip().startswith("{")
    assert httpx.get(f"{url}/collections", headers={"api-key": key}).status_code == 200
    assert (
        httpx.get(f"{url}/collections", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )
    # health probes stay open, as in Qdrant
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_fixture_key_is_the_documented_one(qdrant_server_with_key: Any) -> None:
    if getattr(qdrant_server_with_key, "is_real", False):
        pytest.skip("real server uses QDRANT_API_KEY")
    assert qdrant_server_with_key.api_key == TEST_API_KEY


def test_unimplemented_endpoint_is_loud(qdrant_server: Any) -> None:
    server = _test_server_only(qdrant_server)
    server.create_collection("u", 4)
    answer = httpx.post(f"{server.url}/collections/u/points/delete", json={"points": [1]})
    assert answer.status_code == 501
    assert "does not implement" in answer.json()["status"]["error"]
    assert server.spec_violations == []
    assert len(server.internal_errors) == 1
    server.internal_errors.clear()
