"""Fixtures for the tests of the Qdrant test server itself."""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root must be importable as `tests.qdrant_server` (until the
# project's pytest config sets `pythonpath = ["."]`).
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.qdrant_server.fixtures import (  # noqa: E402, F401
    qdrant_cluster,
    qdrant_server,
    qdrant_server_with_key,
)
