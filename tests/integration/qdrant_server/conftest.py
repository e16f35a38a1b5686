"""Fixtures for the tests of the Qdrant test server itself."""

from __future__ import annotations

from tests.qdrant_server.fixtures import (  # noqa: F401
    qdrant_cluster,
    qdrant_server,
    qdrant_server_with_key,
)
