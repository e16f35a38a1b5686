"""A base backup taken while archiving lags, then a target just after its end.

With ``-X none`` the server's ``pg_backup_stop`` waits until the backup's WAL
is archived, so pg_basebackup (and the manifest's finish time) ends long after
the backup itself, when ``archive_command`` lags: every commit in between is
restorable from that backup, which is consistent at its stop LSN. With only that one base backup,
``pitr-restore`` refused such a target as "before base backup ... ended" (it
took the manifest's finish time as the backup's end) and wal-check's window
started late. The end is now the STOP TIME of the backup history file. Real PG15; archiving held back by a flag file.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from seawall.postgres.wal.archive import parse_backup_stop_time
from tests.conftest import SEAWALL
from tests.integration.wal.helpers import Archived, Restored, now_utc, pitr, wait_archived
from tests.support.pgcluster import PgCluster


def test_target_between_backup_stop_and_manifest_finish(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    key, public = age_keys
    gate = backup_dir / "archiving-on"  # backup_dir is 0777: the postgres user sees it
    gate.touch()
    command = (
        f"'test -f {gate} && env BACKUP_DIR={backup_dir} PG_CLUSTER_NAME=main ENCRYPTION=true "
        f"ENCRYPTION_RECIPIENTS={public} {SEAWALL} postgres wal-push %p'"
    )
    pg = pg_factory(
        extra_conf={"archive_mode": "on", "archive_command": command, "wal_keep_size": "0"}
    )
    arch = Archived(pg, backup_dir, key, public)
    pg.psql("CHECKPOINT")
    arch.switch_and_wait()
    pg.psql("CREATE TABLE t (batch int, i int)")

    gate.unlink()  # archiving lags from now on
    backup = subprocess.Popen(
        [SEAWALL, "postgres", "basebackup", "--json", "--wal-wait", "300"],
        env=arch.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # pg_backup_stop wrote the backup history file: the backup itself has ended
    # (its stop LSN is set); the server, and so pg_basebackup, now waits for the
    # WAL to be archived
    deadline = time.monotonic() + 120
    while not list((pg.base / "data" / "pg_wal").glob("*.backup")):
        assert backup.poll() is None, backup.communicate()
        assert time.monotonic() < deadline, "base backup did not end"
        time.sleep(0.05)
    # STOP TIME has whole seconds: commit once the server's clock is past the next one
    history = next((pg.base / "data" / "pg_wal").glob("*.backup")).read_text()
    stop = parse_backup_stop_time(history)
    assert stop is not None, history
    while datetime.fromisoformat(now_utc(pg).replace("Z", "+00:00")) <= stop:
        assert time.monotonic() < deadline, "server clock does not advance"
        time.sleep(0.05)
    pg.psql("INSERT INTO t SELECT 1, g FROM generate_series(1, 10) g")
    t1 = now_utc(pg)
    pg.psql("INSERT INTO t SELECT 2, g FROM generate_series(1, 10) g")
    gate.touch()  # archiving catches up; the base backup's manifest is finished
    out, err = backup.communicate(timeout=300)
    assert backup.returncode == 0, err
    base = json.loads(out)
    seg = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_archived(pg, seg, 60)

    restored, res = pitr(arch, "--target-time", t1)
    restores.append(restored)
    assert json.loads(res.stdout)["base_backup"] == base["id"]
    assert restored.psql("SELECT DISTINCT batch FROM t ORDER BY batch") == "1"
