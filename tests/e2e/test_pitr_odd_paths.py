"""pitr-restore into a data directory whose path needs shell quoting (session 7 hunt).

restore_command is run by PostgreSQL through ``sh -c``; the wrapper script
sits beside the data directory, so a space (or a quote) in that path split
the command and recovery stopped with "command not found".
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from seawall.ports import free_loopback_port
from tests.integration.wal.helpers import Restored, make_archived
from tests.support.pgcluster import PgCluster


def test_pitr_restore_into_a_path_with_a_space_and_a_quote(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
    arch.basebackup()
    arch.pg.psql("INSERT INTO t SELECT g FROM generate_series(11, 20) g")
    arch.switch_and_wait()

    base = Path(tempfile.mkdtemp(prefix="seawall-pitr-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        odd = base / "restore it's here"
        odd.mkdir()
        os.chmod(odd, 0o755)
        data_dir = odd / "data"
        port = free_loopback_port()
        res = arch.seawall(
            "postgres", "pitr-restore", "--data-dir", str(data_dir), "--latest",
            "--start", "--port", str(port), "--wait-timeout", "120",
        )  # fmt: skip
        restored = Restored(base, data_dir, port, arch.pg.bin_dir)
        restores.append(restored)
        assert res.returncode == 0, res.stdout + res.stderr
        assert restored.psql("SELECT count(*) FROM t") == "20"
    finally:
        shutil.rmtree(base, ignore_errors=True)
