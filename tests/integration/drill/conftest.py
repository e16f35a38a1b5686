"""The Qdrant test server fixtures for the drill tests."""

from tests.integration.qdrant.conftest import make_ctx, qdir  # noqa: F401
from tests.qdrant_server.fixtures import qdrant_server  # noqa: F401
