"""A segment deleted from the middle of the archive: wal-check reports the gap
(non-zero exit) and pitr-restore refuses targets after it, up front."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.wal.helpers import make_archived, now_utc
from tests.support.pgcluster import PgCluster


def test_gap_reported_and_pitr_past_it_refused(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    never_made = tmp_path / "never-made"
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE TABLE t (i int)")
    arch.basebackup()
    segments = []
    before_gap = ""
    for i in range(4):
        arch.pg.psql(f"INSERT INTO t VALUES ({i})")
        if i == 1:
            before_gap = now_utc(arch.pg)
            time.sleep(0.05)
        segments.append(arch.switch_and_wait())
    ok = arch.seawall("postgres", "wal-check", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["gaps"] == [] and report["recoverable_window"]["latest"]

    victim = segments[2]
    (path,) = (backup_dir / "postgresql" / "wal").rglob(f"{victim}-*")
    path.unlink()

    res = arch.seawall("postgres", "wal-check", "--json")
    assert res.returncode == 3
    gaps = json.loads(res.stdout)["gaps"]
    assert gaps == [{"timeline": 1, "first_missing": victim, "last_missing": victim, "count": 1}]
    text = arch.seawall("postgres", "wal-check")
    assert (
        text.returncode == 3 and f"GAP on timeline 1: 1 segment(s) missing, {victim}" in text.stdout
    )

    after = "2999-01-01T00:00:00Z"
    for target in (["--target-time", after], ["--latest"]):
        refused = arch.seawall("postgres", "pitr-restore", "--data-dir", str(never_made), *target)
        assert refused.returncode == 9, refused.stderr
        assert victim in refused.stderr and "recoverable window:" in refused.stderr
    assert not never_made.exists()

    # a target before the gap is still fine (plan only)
    plan = arch.seawall(
        "postgres",
        "pitr-restore",
        "--data-dir",
        str(never_made),
        "--target-time",
        before_gap,
        "--dry-run",
        "--json",
    )
    assert plan.returncode == 0, plan.stderr
