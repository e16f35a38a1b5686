"""Restoring over a live Qdrant collection needs --clean, as `postgres restore` does (issue 12).

Against the Qdrant test server (or a real Qdrant at QDRANT_URL): without the
flag the restore is refused (exit 9) before anything is uploaded and the
live collection keeps its points; with it the backup replaces them.
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.test_qdrant_cli import DIM, env_for, qdir, qdrant_server, sw

__all__ = ["qdir", "qdrant_server"]  # pytest fixtures used below


def test_restore_over_a_live_collection_needs_clean(qdrant_server: Any, qdir: Any) -> None:
    qdrant_server.create_collection("live", DIM, points=50, seed=11)
    env = env_for(qdrant_server, qdir)
    res = sw(["qdrant", "backup", "live"], env)
    assert res.returncode == 0, res.stderr
    # the live collection moves on after the backup: 80 other points
    qdrant_server.delete_collection("live")
    qdrant_server.create_collection("live", DIM, points=80, seed=12)

    res = sw(["qdrant", "restore", "latest", "--collection", "live"], env)
    assert res.returncode == 9, res.stdout + res.stderr
    assert "'live' exists" in res.stderr and "--clean" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert qdrant_server.points_count("live") == 80  # untouched

    res = sw(["qdrant", "restore", "latest", "--collection", "live", "--json"], env)
    assert res.returncode == 9
    assert json.loads(res.stdout)["error"]["kind"] == "refused"
    assert qdrant_server.points_count("live") == 80

    res = sw(["qdrant", "restore", "latest", "--collection", "live", "--clean"], env)
    assert res.returncode == 0, res.stderr
    assert "restored into 'live' (replaced)" in res.stdout
    assert qdrant_server.points_count("live") == 50


def test_restore_into_a_new_collection_needs_no_flag(qdrant_server: Any, qdir: Any) -> None:
    qdrant_server.create_collection("src", DIM, points=20, seed=13)
    env = env_for(qdrant_server, qdir)
    assert sw(["qdrant", "backup", "src"], env).returncode == 0
    res = sw(["qdrant", "restore", "latest", "--to", "copy", "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["collection"] == "copy" and out["replaced"] is False
    assert qdrant_server.points_count("copy") == 20
