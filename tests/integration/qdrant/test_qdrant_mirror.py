"""Qdrant with MIRRORS: the snapshot reaches the mirror, and a restore whose
primary copy has a flipped byte uploads the mirror's good copy, saying so
(docs/object-storage.md, "Mirrors and sync")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from seawall.qdrant.backup import backup
from seawall.qdrant.restore import restore
from seawall.qdrant.select import resolve
from tests.qdrant_server import QdrantTestServer
from tests.qdrant_server.fixtures import require_faults

from .conftest import MakeCtx


def test_restore_uses_the_mirrors_good_copy(
    qdrant_server: Any,
    make_ctx: MakeCtx,
    qdir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_faults(qdrant_server)  # the test server: its uploads are observable
    server: QdrantTestServer = qdrant_server
    server.create_collection("mirrored", 4, points=40, seed=31)
    mirror = tmp_path / "mirror"
    ctx = make_ctx(server, mirrors=[str(mirror)])
    backup(ctx, ["mirrored"]).raise_for_status()
    (art,) = [p for p in qdir.rglob("*.tar*") if p.is_file()]
    copy = mirror / art.relative_to(qdir)
    assert copy.read_bytes() == art.read_bytes()
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0xFF
    art.write_bytes(bytes(data))
    server.delete_collection("mirrored")
    with caplog.at_level(logging.WARNING):
        restore(ctx, resolve(ctx, "latest"))
    assert "mirrored" in server.collection_names()
    assert server.uploads
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"mirror {mirror}" in m and "good copy" in m for m in messages), messages
