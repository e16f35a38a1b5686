"""``seawall status`` over real Qdrant snapshots (the Qdrant test server): a
configured collection never backed up is named; a healthy set exits 0; a
stale snapshot names the command that fixes it (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import run_seawall
from tests.qdrant_server import fixtures as qfx
from tests.qdrant_server.fixtures import qdrant_server  # noqa: F401

qdir = qfx.qdir


def _env(server: Any, qdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT_", "SEAWALL_"))}
    env.update(
        BACKUP_DIR=str(qdir), QDRANT_URL=server.url, ENGINES="qdrant", PRUNE_AFTER_BACKUP="false"
    )
    if getattr(server, "api_key", None):
        env["QDRANT_API_KEY"] = server.api_key
    env.update(extra)
    return env


def _status(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    res = run_seawall(["status"], env)
    data = json.loads(run_seawall(["status", "--json"], env).stdout)
    return res, data


def test_status_over_qdrant_snapshots(qdrant_server: Any, qdir: Path) -> None:  # noqa: F811
    qdrant_server.create_collection("docs", 8, points=50, seed=1)
    env = _env(qdrant_server, qdir, QDRANT_COLLECTIONS="docs,faq")
    assert run_seawall(["qdrant", "backup", "docs"], env).returncode == 0

    res, data = _status(env)
    assert res.returncode == 11, res.stdout + res.stderr
    errors = [
        f"{p['subject']}: {p['message']}" for p in data["problems"] if p["severity"] == "error"
    ]
    assert errors == ["qdrant/snapshot/faq: no successful backup"], res.stdout
    assert "run `seawall qdrant backup faq`" in res.stdout

    ok_env = _env(qdrant_server, qdir, QDRANT_COLLECTIONS="docs")
    res, data = _status(ok_env)
    assert res.returncode == 0, res.stdout + res.stderr
    (series,) = data["series"]
    assert (series["engine"], series["kind"], series["series"]) == ("qdrant", "snapshot", "docs")
    assert series["stale"] is False and series["verified"] is True
    assert data["pitr"] == []  # no PostgreSQL here: no PITR section, no false alarm

    time.sleep(2.5)
    res, data = _status({**ok_env, "STATUS_BACKUP_INTERVAL": "1s", "STATUS_GRACE": "1s"})
    assert res.returncode == 11
    assert "qdrant/snapshot/docs: stale:" in res.stdout
    assert "run `seawall qdrant backup docs`" in res.stdout
