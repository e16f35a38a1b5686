"""Fixtures for seawall's Qdrant tests: the Qdrant test server (or a real
Qdrant at QDRANT_URL), a backup directory and a Context wired to both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seawall.context import Context
from seawall.settings import Settings
from tests.qdrant_server import fixtures as qfx
from tests.qdrant_server.fixtures import (  # noqa: F401
    qdrant_cluster,
    qdrant_server,
    qdrant_server_with_key,
)

MakeCtx = Callable[..., Context]

qdir = qfx.qdir


@pytest.fixture
def make_ctx(qdir: Path) -> MakeCtx:
    """Context for a server handle: ``make_ctx(server, **settings)``."""

    def make(handle: Any, **overrides: Any) -> Context:
        values: dict[str, Any] = {
            "backup_dir": qdir,
            "qdrant_url": handle.url if handle is not None else "http://127.0.0.1:9",
            "prune_after_backup": False,
            "compression": "zstd",
        }
        # explicit, so a QDRANT_API_KEY in the environment (real-Qdrant mode) cannot leak in
        values["qdrant_api_key"] = getattr(handle, "api_key", None) or None
        values.update(overrides)
        return Context(Settings(**values))

    return make
