"""``seawall demo`` works on this machine as a new user would run it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.conftest import run_seawall


def _env() -> dict[str, str]:
    # a new user's shell: no PG*/DB_*/BACKUP_DIR settings at all
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


def test_demo_runs_end_to_end_and_cleans_up() -> None:
    res = run_seawall(["demo", "--json"], _env(), timeout=240)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["identical"] is True and summary["rows"] > 0
    assert summary["stored_size"] < summary["raw_size"]
    assert {"manifest.json", "dump.pgdump.zst.age", "globals.sql.zst.age"} <= set(summary["files"])
    assert not Path(summary["backup_dir"]).exists()
    for step in (
        "started a throwaway PostgreSQL",
        "backed up",
        "verified it deeply",
        "restored it",
    ):
        assert step in res.stderr


def test_demo_keep_leaves_the_backups(tmp_path: Path) -> None:
    res = run_seawall(["demo", "--keep", "--json"], _env(), timeout=240)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    folder = Path(summary["backup_folder"])
    try:
        assert (folder / "manifest.json").is_file()
        assert json.loads((folder / "manifest.json").read_text())["status"] == "success"
    finally:
        shutil.rmtree(Path(summary["backup_dir"]).parent, ignore_errors=True)
