"""A later timeline archived without its ``.history`` file, on a real PG15.

A PITR-restored server runs with ``archive_mode = off``, so PostgreSQL never
archives the history file of the timeline it creates at promotion; the
runbook says to push it by hand once archiving is turned on. When that step
is forgotten, the archive holds timeline 2's segments but no
``00000002.history``: PostgreSQL's ``recovery_target_timeline = 'latest'``
finds the newest timeline by probing history files, so it stays on timeline
1 and a ``--latest`` restore silently comes back with the ABANDONED branch.
``wal-check`` must report it (exit 3, naming the file), ``status`` too (exit
11), ``pitr-restore`` must refuse up front (exit 9) instead of restoring the
wrong history; once the file is pushed both work and the restore follows
timeline 2.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import SEAWALL
from tests.integration.wal.helpers import (
    Restored,
    archive_command,
    make_archived,
    now_utc,
    pitr,
    wait_archived,
)
from tests.support.pgcluster import PgCluster


def _batches(r: Restored) -> list[int]:
    out = r.psql("SELECT DISTINCT batch FROM t ORDER BY batch")
    return [int(x) for x in out.split()]


def _start(r: Restored) -> None:
    res = subprocess.run(
        [str(r.bin_dir / "pg_ctl"), "-D", str(r.data_dir), "-l",
         str(r.data_dir / "primary.log"), "-w", "start"],
        user="postgres", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_timeline_without_history_file_is_reported_and_refused(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    pg.psql("CREATE TABLE t (batch int, i int)")
    arch.basebackup()
    pg.psql("INSERT INTO t SELECT 1, g FROM generate_series(1, 10) g")
    t1 = now_utc(pg)
    pg.psql("INSERT INTO t SELECT 2, g FROM generate_series(1, 10) g")
    arch.switch_and_wait()

    # restore to t1, promote (timeline 2), archive into the same archive,
    # but forget to push 00000002.history
    r, _ = pitr(arch, "--target-time", t1)
    restores.append(r)
    r.stop()
    with (r.data_dir / "postgresql.auto.conf").open("a") as fh:
        fh.write(
            f"archive_mode = on\narchive_command = {archive_command(backup_dir, arch.public_key)}\n"
        )
    _start(r)
    tl = int(r.psql("SELECT timeline_id FROM pg_control_checkpoint()"))
    assert tl == 2
    r.psql("INSERT INTO t SELECT 5, g FROM generate_series(1, 10) g")
    seg = r.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_archived(r, seg)
    r.stop()

    check = arch.seawall("postgres", "wal-check", "--json")
    assert check.returncode == 3, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["ok"] is False
    assert report["missing_histories"] == ["00000002.history"]
    assert "00000002.history" in check.stderr
    status = arch.seawall("status", "--json")
    assert status.returncode == 11, status.stdout + status.stderr
    assert "timeline history file 00000002.history is not archived" in status.stdout

    refused, res = pitr(arch, "--latest", expect_ok=False)
    restores.append(refused)
    assert res.returncode == 9, res.stdout + res.stderr
    assert "00000002.history" in res.stderr
    assert not refused.data_dir.exists()

    # the runbook's step, done late: push the history file; now --latest follows timeline 2
    push = subprocess.run(
        ["runuser", "-u", "postgres", "--", SEAWALL, "postgres", "wal-push",
         str(r.data_dir / "pg_wal" / "00000002.history")],
        env={k: v for k, v in arch.env().items() if k != "ENCRYPTION_IDENTITY_FILE"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr
    check = arch.seawall("postgres", "wal-check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    latest, _ = pitr(arch, "--latest")
    restores.append(latest)
    assert _batches(latest) == [1, 5]
