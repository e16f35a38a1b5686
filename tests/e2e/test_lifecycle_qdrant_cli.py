"""Issue 12 on the Qdrant side, through the CLI against the Qdrant test server:
a Qdrant that is down leaves a failed record the exporter reports; pins show
in `qdrant list` and survive prune; a mistyped collection creates no series."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from seawall.exporter.collector import SeawallCollector, make_registry
from tests.conftest import SEAWALL
from tests.qdrant_server import QdrantTestServer, fixtures as qfx

DIM = 8
qdrant_server = qfx.qdrant_server
qdir = qfx.qdir


def env_for(url: str, backup_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BACKUP_DIR": str(backup_dir),
        "LOG_FORMAT": "json",
        "PRUNE_AFTER_BACKUP": "false",
        "QDRANT_URL": url,
        **extra,
    }


def sw(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEAWALL, *args], env=env, capture_output=True, text=True, timeout=300)


def metrics(root: Path) -> Any:
    return make_registry(SeawallCollector(root))


def manifests(root: Path, collection: str) -> list[dict[str, Any]]:
    found = [
        json.loads(p.read_text())
        for p in (root / "qdrant" / "snapshot" / collection).glob("*/manifest.json")
    ]
    return sorted(found, key=lambda m: str(m["started_at"]))


def test_qdrant_down_leaves_a_failed_record_the_exporter_reports(
    qdrant_server: Any, qdir: Path
) -> None:
    if not isinstance(qdrant_server, QdrantTestServer):
        pytest.skip("stops the server: needs the Qdrant test server")
    qdrant_server.create_collection("docs", DIM, points=40, seed=1)
    url = qdrant_server.url
    env = env_for(url, qdir)
    res = sw(["qdrant", "backup"], env)
    assert res.returncode == 0, res.stderr
    reg = metrics(qdir)
    assert reg.get_sample_value("qdrant_backup_status", {"collection": "docs"}) == 1

    qdrant_server.stop()  # Qdrant is down; the CronJob runs as usual (no names given)
    res = sw(["qdrant", "backup"], env)
    assert res.returncode == 5, res.stderr
    assert "cannot reach Qdrant" in res.stderr
    ok, failed = manifests(qdir, "docs")
    assert ok["status"] == "success"
    assert failed["status"] == "failed" and "cannot reach Qdrant" in failed["error"]
    assert failed["target"].startswith("http://127.0.0.1:") and failed["artifacts"] == []
    reg = metrics(qdir)
    assert reg.get_sample_value("qdrant_backup_status", {"collection": "docs"}) == 0
    series = {"engine": "qdrant", "kind": "snapshot", "series": "docs"}
    assert reg.get_sample_value("seawall_backup_last_run_success", series) == 0
    assert reg.get_sample_value("seawall_backup_runs", {**series, "result": "failed"}) == 1

    # --full-storage: the node's series is known from QDRANT_URL, the failure goes there
    res = sw(["qdrant", "backup", "--full-storage"], env)
    assert res.returncode == 5, res.stderr
    node = url.removeprefix("http://")
    [full] = [
        json.loads(p.read_text())
        for p in (qdir / "qdrant" / "full-storage").glob("*/*/manifest.json")
    ]
    assert (full["series"], full["status"]) == (node, "failed")
    reg = metrics(qdir)
    assert (
        reg.get_sample_value(
            "seawall_backup_last_run_success",
            {"engine": "qdrant", "kind": "full-storage", "series": node},
        )
        == 0
    )

    # a first run ever against a server that is down: no series to page for,
    # a rejected run the exporter counts, and forget clears it
    fresh = qdir / "fresh"
    res = sw(["qdrant", "backup"], env_for(url, fresh))
    assert res.returncode == 5
    assert not (fresh / "qdrant" / "snapshot").exists()
    reg = metrics(fresh)
    assert reg.get_sample_value("seawall_rejected_runs") == 1
    assert reg.get_sample_value("qdrant_backup_status", {"collection": "*"}) is None
    info = json.loads(sw(["info", "--json"], env_for(url, fresh)).stdout)
    [rejected] = info["rejected_runs"]
    assert rejected["series"] == "qdrant/snapshot/*" and "cannot reach Qdrant" in rejected["error"]
    res = sw(["forget", "--series", "*", "--execute"], env_for(url, fresh))
    assert res.returncode == 0, res.stderr
    assert metrics(fresh).get_sample_value("seawall_rejected_runs") == 0


def test_pinned_snapshot_in_list_survives_prune_and_typo_makes_no_series(
    qdrant_server: Any, qdir: Path
) -> None:
    qdrant_server.create_collection("docs", DIM, points=40, seed=2)
    env = env_for(
        qdrant_server.url,
        qdir,
        RETENTION_DAYS="1",
        RETENTION_WEEKS="0",
        RETENTION_MONTHS="0",
        VERIFY_BACKUP="false",
    )
    first = json.loads(sw(["qdrant", "backup", "docs", "--json"], env).stdout)[0]
    res = sw(
        ["pin", "latest", "--series", "docs", "--engine", "qdrant", "--note", "before reindex"],
        env,
    )
    assert res.returncode == 0, res.stderr
    assert first["id"] in res.stdout and "pinned: before reindex" in res.stdout
    for _ in range(2):  # same-day backups, retention right after each
        res = sw(["qdrant", "backup", "docs"], {**env, "PRUNE_AFTER_BACKUP": "true"})
        assert res.returncode == 0, res.stderr
    ids = [m["id"] for m in manifests(qdir, "docs")]
    assert len(ids) == 2 and ids[0] == first["id"]  # the middle one was pruned, the pin stays
    listing = sw(["qdrant", "list"], env).stdout
    assert f"{first['id']}" in listing and "pinned: before reindex" in listing
    rows = json.loads(sw(["qdrant", "list", "--json"], env).stdout)["backups"]
    assert [r["pin"]["note"] for r in rows if r["pin"]] == ["before reindex"]
    assert (
        metrics(qdir).get_sample_value(
            "seawall_backups_pinned", {"engine": "qdrant", "kind": "snapshot", "series": "docs"}
        )
        == 1
    )

    # a mistyped collection: exit 4, no series, one rejected run
    res = sw(["qdrant", "backup", "dosc"], env)
    assert res.returncode == 4, res.stderr
    assert not (qdir / "qdrant" / "snapshot" / "dosc").exists()
    reg = metrics(qdir)
    assert reg.get_sample_value("seawall_rejected_runs") == 1
    assert reg.get_sample_value("qdrant_backup_status", {"collection": "dosc"}) is None
