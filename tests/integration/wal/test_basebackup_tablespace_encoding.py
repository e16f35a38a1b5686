"""A tablespace whose directory name is not UTF-8 (a LATIN1 cluster's ``café``).

The manifest is JSON in UTF-8 and records each tablespace's original
location, which a restore writes back to ``tablespace_map``; a location
that is not UTF-8 cannot be recorded there. The run must end in one line
naming the tablespace and the way out, with nothing left behind.
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
from tests.integration.wal.helpers import Archived, archive_command
from tests.support.pgcluster import PgCluster


@pytest.fixture
def parent() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="seawall-ts-enc-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(os.fsencode(path), ignore_errors=True)


def test_a_tablespace_location_that_is_not_utf8_fails_in_one_line(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    parent: Path,
) -> None:
    key, public = age_keys
    pg = pg_factory(
        encoding="LATIN1",
        extra_conf={
            "archive_mode": "on",
            "archive_command": archive_command(backup_dir, public),
            "wal_keep_size": "0",
        },
    )
    arch = Archived(pg, backup_dir, key, public)
    pg.psql("CHECKPOINT")
    arch.switch_and_wait()
    raw = os.fsencode(parent) + b"/caf\xe9"
    os.mkdir(raw, 0o700)
    shutil.chown(raw, "postgres", "postgres")
    pg.psql(
        f"SET client_encoding = 'UTF8'; CREATE TABLESPACE caf LOCATION '{parent}/café'; "
        "CREATE TABLE t (i int) TABLESPACE caf; INSERT INTO t VALUES (1)"
    )
    res = subprocess.run(
        [SEAWALL, "postgres", "basebackup", "--wal-wait", "5"],
        env=arch.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert "internal error" not in res.stderr.lower(), res.stderr
    assert "not UTF-8" in line and "caf" in line, line
    (run,) = (backup_dir / "postgresql" / "base" / "main").glob("*")
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert [p.name for p in run.iterdir()] == ["manifest.json"]
