"""pytest fixtures for the Qdrant test server.

Use from a test module (or a conftest.py) with::

    from tests.qdrant_server.fixtures import qdrant_server, qdrant_cluster  # noqa: F401

``qdir`` is a backup directory outside pytest's tmp, removed after the test.

``qdrant_server`` yields a started ``QdrantTestServer`` (127.0.0.1, ephemeral
port) and stops it after the test. At teardown it fails the test if any
request or response broke the OpenAPI spec: a test that provokes a violation
on purpose asserts on ``server.spec_violations`` and then clears the list.

With ``QDRANT_URL`` set (and optionally ``QDRANT_API_KEY``) the fixture yields
a ``RemoteQdrant`` handle on that real server instead; ``require_faults``
skips fault-injection tests there. ``qdrant_cluster`` needs
``QDRANT_CLUSTER_URLS`` (comma-separated REST URLs of every peer) in that mode,
and ``require_test_cluster`` skips tests that steer replica states.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .faults import Faults
from .remote import RemoteCluster, RemoteQdrant
from .server import QdrantTestCluster, QdrantTestServer

TEST_API_KEY = "seawall-test-key"


@pytest.fixture
def qdir() -> Iterator[Path]:
    """A backup root outside pytest's tmp (like production volumes)."""
    path = Path(tempfile.mkdtemp(prefix="seawall-qdrant-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def real_qdrant_url() -> str | None:
    return os.environ.get("QDRANT_URL") or None


def require_faults(handle: Any) -> Faults:
    """The handle's fault registry; skips the test against a real Qdrant."""
    faults = getattr(handle, "faults", None)
    if faults is None:
        pytest.skip("fault injection needs the Qdrant test server (QDRANT_URL is set)")
    return faults  # type: ignore[no-any-return]


@pytest.fixture
def qdrant_server() -> Iterator[QdrantTestServer | RemoteQdrant]:
    """A Qdrant without API key: the test server, or the real one at QDRANT_URL."""
    url = real_qdrant_url()
    if url:
        handle = RemoteQdrant(url, os.environ.get("QDRANT_API_KEY") or None)
        try:
            yield handle
        finally:
            handle.close()
        return
    server = QdrantTestServer().start()
    try:
        yield server
    finally:
        server.stop()
    server.assert_no_spec_violations()


@pytest.fixture
def qdrant_server_with_key() -> Iterator[QdrantTestServer | RemoteQdrant]:
    """A Qdrant that requires ``api_key`` (``TEST_API_KEY`` on the test server)."""
    url = real_qdrant_url()
    if url:
        key = os.environ.get("QDRANT_API_KEY")
        if not key:
            pytest.skip("QDRANT_URL is set without QDRANT_API_KEY")
        handle = RemoteQdrant(url, key)
        try:
            yield handle
        finally:
            handle.close()
        return
    server = QdrantTestServer(api_key=TEST_API_KEY).start()
    try:
        yield server
    finally:
        server.stop()
    server.assert_no_spec_violations()


def require_test_cluster(cluster: Any) -> QdrantTestCluster:
    """Skip a test that needs test-cluster-only controls (replica states...)."""
    if not isinstance(cluster, QdrantTestCluster):
        pytest.skip("needs the Qdrant test cluster (a real cluster is in use)")
    return cluster


@pytest.fixture
def qdrant_cluster() -> Iterator[QdrantTestCluster | RemoteCluster]:
    """Three peers sharing one cluster state, or the real cluster whose peers'
    REST URLs are in ``QDRANT_CLUSTER_URLS`` (comma-separated) when
    ``QDRANT_URL`` is set."""
    if real_qdrant_url():
        urls = [
            u.strip() for u in os.environ.get("QDRANT_CLUSTER_URLS", "").split(",") if u.strip()
        ]
        if not urls:
            pytest.skip("QDRANT_URL is set: a real cluster needs QDRANT_CLUSTER_URLS")
        remote = RemoteCluster(urls, os.environ.get("QDRANT_API_KEY") or None)
        try:
            yield remote
        finally:
            remote.close()
        return
    cluster = QdrantTestCluster(peers=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()
    cluster.assert_no_spec_violations()
