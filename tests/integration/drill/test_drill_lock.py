"""One drill at a time: a second one gives up with exit 6 and touches nothing."""

from __future__ import annotations

import os
from pathlib import Path

from seawall.app.drill import drill_lock
from tests.conftest import run_seawall


def test_a_second_drill_is_refused_while_one_runs(backup_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DB_", "SEAWALL_"))}
    env.update(BACKUP_DIR=str(backup_dir), LOCK_TIMEOUT="0.5", DB_PORT="9")
    with drill_lock(backup_dir, 0, "20261205T000000Z-0001"):
        res = run_seawall(["drill"], env)
    assert res.returncode == 6, res.stderr
    assert "another drill is running" in res.stderr and "20261205T000000Z-0001" in res.stderr
    assert not (backup_dir / "drills").exists()
    # released: the next drill gets past the lock; with nothing backed up it fails, recorded
    res = run_seawall(["drill"], env)
    assert res.returncode == 3, res.stderr
    assert "no successful logical backup of 'postgres'" in res.stderr
    assert list((backup_dir / "drills" / "postgresql" / "postgres").glob("*/manifest.json"))
