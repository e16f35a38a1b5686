"""A base backup of a cluster with a tablespace (session 7 hunt).

pg_basebackup streams only the main data directory to stdout, so seawall's
base backups cannot include a tablespace yet. The operator must learn that
in one line naming the tablespace and the ways out, with the run recorded
as failed (alerts fire), not from pg_basebackup's "can only write single
tablespace to stdout, database has 2".
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.integration.wal.helpers import make_archived
from tests.support.pgcluster import PgCluster


def test_base_backup_with_a_tablespace_fails_naming_it(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    location = Path(tempfile.mkdtemp(prefix="seawall-ts-", dir="/tmp"))
    try:
        os.chmod(location, 0o700)
        shutil.chown(location, "postgres", "postgres")
        arch.pg.psql(f"CREATE TABLESPACE \"Cold data\" LOCATION '{location}'")
        arch.pg.psql('CREATE TABLE archive_t (i int) TABLESPACE "Cold data"')

        res = arch.seawall("postgres", "basebackup", "--wal-wait", "5")
        assert res.returncode == 1, res.stderr
        line = res.stderr.strip().splitlines()[-1]
        assert f"'Cold data' ({location})" in line, line
        assert "pg_default" in line and "seawall postgres backup" in line, line

        runs = list((backup_dir / "postgresql" / "base" / "main").glob("*/manifest.json"))
        statuses = [json.loads(p.read_text())["status"] for p in runs]
        assert statuses == ["failed"]  # recorded: the exporter and alerts see it

        # without the tablespace, the same cluster backs up
        arch.pg.psql('DROP TABLE archive_t; DROP TABLESPACE "Cold data"')
        arch.basebackup()
    finally:
        shutil.rmtree(location, ignore_errors=True)
