"""A ``.partial`` segment in the archive (what a promoted standby archives), PG15.

The current, unfinished segment is archived under its ``.partial`` name (as
PostgreSQL does for the old timeline's last segment at promotion). wal-check
must not count it as a segment, a gap or a duplicate; ``--latest`` must
still restore everything in the complete segments, and prune must keep it as
WAL (its key ``….partial-<sha>`` is not a crashed writer's temporary).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.conftest import SEAWALL
from tests.integration.wal.helpers import Restored, archive_files, make_archived, pitr
from tests.support.pgcluster import PgCluster


def test_partial_segment_in_archive(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    pg.psql("CREATE TABLE t (batch int)")
    arch.basebackup()
    pg.psql("INSERT INTO t VALUES (1)")
    arch.switch_and_wait()
    pg.psql("INSERT INTO t VALUES (2)")  # in the current segment only
    current = pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    staged = Path(tempfile.mkdtemp(prefix="seawall-partial-", dir="/tmp"))
    shutil.chown(staged, "postgres", "postgres")
    partial = staged / f"{current}.partial"
    shutil.copyfile(pg.base / "data" / "pg_wal" / current, partial)
    shutil.chown(partial, "postgres", "postgres")
    push = subprocess.run(
        ["runuser", "-u", "postgres", "--", SEAWALL, "postgres", "wal-push", str(partial)],
        env={k: v for k, v in arch.env().items() if k != "ENCRYPTION_IDENTITY_FILE"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(staged, ignore_errors=True)
    assert push.returncode == 0, push.stderr
    assert any(".partial-" in f for f in archive_files(backup_dir))

    check = arch.seawall("postgres", "wal-check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    r, _ = pitr(arch, "--latest")
    restores.append(r)
    assert r.psql("SELECT batch FROM t ORDER BY batch") == "1"
    r.stop()

    dry = arch.seawall("prune", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    actions = json.loads(dry.stdout)["actions"]
    mine = [a for a in actions if a["name"] == f"{current}.partial"]
    assert [(a["what"], a["action"]) for a in mine] == [("wal", "keep")], actions
