"""Targets at the very edge of a base backup, on a real PG15.

The earliest LSN a base backup serves is its stop LSN (its consistency
point): a restore to exactly that LSN must come back with what was committed
before the backup and nothing after; one byte earlier must be refused up
front (exit 9) rather than handed to PostgreSQL, which would stop with
"requested recovery stop point is before consistent recovery point".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from seawall.walcore.lsn import format_lsn, parse_lsn
from tests.integration.wal.helpers import Restored, make_archived, pitr
from tests.support.pgcluster import PgCluster


def test_target_lsn_at_and_just_before_the_backup_stop(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    pg.psql("CREATE TABLE t (batch int)")
    pg.psql("INSERT INTO t VALUES (1)")
    base = arch.basebackup()
    pg.psql("INSERT INTO t VALUES (2)")
    arch.switch_and_wait()
    info = base["postgres"]
    assert isinstance(info, dict)
    stop = str(info["stop_lsn"])

    at_stop, res = pitr(arch, "--target-lsn", stop)
    restores.append(at_stop)
    assert json.loads(res.stdout)["base_backup"] == base["id"]
    assert at_stop.psql("SELECT batch FROM t ORDER BY batch") == "1"
    at_stop.stop()

    early, res = pitr(arch, "--target-lsn", format_lsn(parse_lsn(stop) - 1), expect_ok=False)
    restores.append(early)
    assert res.returncode == 9, res.stdout + res.stderr
    assert "before the oldest usable base backup" in res.stderr
    assert not early.data_dir.exists()
