"""Retention over real backups taken at past dates (faketime), then pruned.

faketime fakes the clock of the whole process tree, so these are real
`seawall postgres backup` runs of a real cluster whose manifests carry past
timestamps; `seawall prune` then runs at a fixed "now". The expected set is
worked out by hand below, not by the policy code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.support.pgcluster import PgCluster

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime not installed")

# Backups at 02:00 UTC on these days of 2026 (all successful unless noted).
DAYS = ["03-01", "04-30", "05-15", "05-31", "06-13", "06-20", "06-27", "06-28", "06-29", "06-30"]
FAILED_DAYS = ["06-01", "06-29"]  # 06-01 is past the 7-day grace at NOW; 06-29 is within it
NOW = "2026-06-30 12:00:00"

# Policy: RETENTION_DAYS=3, RETENTION_WEEKS=2, RETENTION_MONTHS=2.
#   daily 3   -> newest of each of the last 3 days with a backup: 06-30, 06-29, 06-28
#   weekly 2  -> ISO 2026-W27 (Mon 06-29..): 06-30; 2026-W26 (06-22..06-28): 06-28
#   monthly 2 -> 2026-06: 06-30; 2026-05: 05-31
# Kept: 06-30, 06-29, 06-28, 05-31 (+ the failed 06-29, within its grace).
EXPECTED_KEPT_OK = {"06-30", "06-29", "06-28", "05-31"}


def _run(
    args: list[str], env: dict[str, str], when: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [SEAWALL, *args]
    if when is not None:
        cmd = ["faketime", when, *cmd]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_gfs_over_real_backups_with_past_dates(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g", db="app")
    env = pg.env(
        BACKUP_DIR=str(backup_dir),
        DB_NAME="app",
        RETENTION_DAYS="3",
        RETENTION_WEEKS="2",
        RETENTION_MONTHS="2",
        PRUNE_AFTER_BACKUP="false",
        LOG_FORMAT="json",
    )
    ids: dict[str, str] = {}
    for day in DAYS:
        res = _run(["postgres", "backup", "--json"], env, f"2026-{day} 02:00:00")
        assert res.returncode == 0, res.stderr
    bad_env = dict(env, PGPASSWORD="wrong-password")
    for day in FAILED_DAYS:
        res = _run(["postgres", "backup"], bad_env, f"2026-{day} 02:00:00")
        assert res.returncode == 5, res.stderr

    listing = json.loads(_run(["postgres", "list", "--json"], env, NOW).stdout)
    rows = listing if isinstance(listing, list) else listing["backups"]
    for row in rows:
        ids[row["id"]] = row["id"][4:6] + "-" + row["id"][6:8]
    assert len(rows) == len(DAYS) + len(FAILED_DAYS)

    dry = _run(["prune", "--dry-run", "--json"], env, NOW)
    assert dry.returncode == 0, dry.stderr
    decision = json.loads(dry.stdout)
    kept_days = {
        ids[a["name"]]
        for a in decision["actions"]
        if a["what"] == "backup" and a["action"] == "keep"
    }
    assert kept_days == EXPECTED_KEPT_OK | {"06-29"}
    reasons = {
        ids[a["name"]]: " ".join(a["reasons"]) for a in decision["actions"] if a["what"] == "backup"
    }
    assert "monthly 2026-05" in reasons["05-31"]
    assert "weekly 2026-W26" in reasons["06-28"]

    res = _run(["prune"], env, NOW)
    assert res.returncode == 0, res.stderr
    after = json.loads(_run(["postgres", "list", "--json"], env, NOW).stdout)
    after_rows = after if isinstance(after, list) else after["backups"]
    ok_days = sorted(ids[r["id"]] for r in after_rows if r["status"] == "success")
    failed = sorted(ids[r["id"]] for r in after_rows if r["status"] == "failed")
    assert set(ok_days) == EXPECTED_KEPT_OK
    assert failed == ["06-29"]
    # The volume holds exactly the kept backups' directories.
    series_dir = backup_dir / "postgresql" / "logical" / "app"
    assert {p.name for p in series_dir.iterdir()} == {r["id"] for r in after_rows}
