"""The server's own error ends a base backup with tablespaces in its words.

An ErrorResponse in the middle of BASE_BACKUP's COPY stream (a file the
server cannot read, the backup cancelled) ends the COPY for libpq, which
hands the error over as the next result. Read as a bare end of the stream,
the operator was told "BASE_BACKUP ended inside an archive" and never which
file or why; the line must carry the server's message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.integration.wal.helpers import Archived, make_archived
from tests.support.pgcluster import PgCluster


@pytest.fixture
def location() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="seawall-ts-err-", dir="/tmp"))
    os.chmod(path, 0o700)
    shutil.chown(path, "postgres", "postgres")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_file_the_server_cannot_read_is_named_in_the_one_line_error(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    location: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to leave a file the postgres user cannot read")
    arch: Archived = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql(f"CREATE TABLESPACE ts LOCATION '{location}'")
    arch.pg.psql("CREATE TABLE t (i int) TABLESPACE ts; INSERT INTO t VALUES (1)")
    (version_dir,) = location.iterdir()
    stray = version_dir / "left-by-root"
    stray.write_text("not the server's\n")
    os.chmod(stray, 0o600)  # root's: the postgres user cannot open it

    res = subprocess.run(
        [SEAWALL, "postgres", "basebackup", "--wal-wait", "5"],
        env=arch.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr  # BackupFailedError, as every failed base backup
    line = res.stderr.strip().splitlines()[-1]
    assert "BASE_BACKUP failed" in line, line
    assert "left-by-root" in line and "Permission denied" in line, line
    (run,) = (backup_dir / "postgresql" / "base" / "main").glob("*")
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert [p.name for p in run.iterdir()] == ["manifest.json"]
    assert arch.pg.psql("SELECT count(*) FROM pg_stat_progress_basebackup") == "0"
