"""Helpers for WAL/PITR tests: a cluster whose archive_command really is seawall.

The cluster runs as the ``postgres`` user, so archive_command carries its
configuration with an ``env`` prefix (only public values: the age
*recipient*, never the identity). The backup root from the ``backup_dir``
fixture is mode 0777 so that user can write into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from seawall.ports import free_loopback_port
from tests.conftest import SEAWALL, run_seawall
from tests.support.pgcluster import PASSWORD, SUPERUSER, PgCluster


@dataclass
class Archived:
    """A cluster archiving into ``backup_dir`` through ``seawall wal-push``."""

    pg: PgCluster
    backup_dir: Path
    key_file: Path
    public_key: str
    cluster_name: str = "main"
    restores: list[Path] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for seawall commands run by the test (root side)."""
        return self.pg.env(
            BACKUP_DIR=str(self.backup_dir),
            PG_CLUSTER_NAME=self.cluster_name,
            ENCRYPTION="true",
            ENCRYPTION_RECIPIENTS=self.public_key,
            ENCRYPTION_IDENTITY_FILE=str(self.key_file),
            LOG_FORMAT="json",
            **extra,
        )

    def seawall(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_seawall(list(args), self.env(**extra))

    def switch_and_wait(self, pg: PgCluster | None = None, timeout: float = 30) -> str:
        """pg_switch_wal() and wait until the finished segment is archived."""
        pg = pg or self.pg
        seg = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
        wait_archived(pg, seg, timeout)
        return seg

    def basebackup(self) -> dict[str, object]:
        res = self.seawall("postgres", "basebackup", "--json", "--wal-wait", "30")
        assert res.returncode == 0, res.stderr
        data: dict[str, object] = json.loads(res.stdout)
        return data


def archive_command(backup_dir: Path, public_key: str, cluster: str = "main") -> str:
    return (
        f"'env BACKUP_DIR={backup_dir} PG_CLUSTER_NAME={cluster} ENCRYPTION=true "
        f"ENCRYPTION_RECIPIENTS={public_key} {SEAWALL} postgres wal-push %p'"
    )


def wait_archived(pg: PgCluster | Restored, segment: str, timeout: float = 30) -> None:
    """Wait until PostgreSQL's archiver reports ``segment`` (or a later one) archived."""
    deadline = time.monotonic() + timeout
    row = ""
    while time.monotonic() < deadline:
        row = pg.psql("SELECT coalesce(last_archived_wal, ''), failed_count FROM pg_stat_archiver")
        last = row.split("|")[0]
        if last and last >= segment and len(last) == len(segment):
            return
        time.sleep(0.1)
    logs = [p for p in (pg.base / "server.log", pg.base / "data" / "primary.log") if p.exists()]
    log = logs[0].read_text()[-2000:] if logs else ""
    raise AssertionError(f"{segment} not archived in {timeout}s; archiver: {row}\n{log}")


def make_archived(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    version: int = 15,
) -> Archived:
    key, public = age_keys
    pg = pg_factory(
        version=version,
        extra_conf={
            "archive_mode": "on",
            "archive_command": archive_command(backup_dir, public),
            "wal_keep_size": "0",
        },
    )
    arch = Archived(pg, backup_dir, key, public)
    # archiving is set up before any backup, as in production: the first
    # push (as the postgres user) creates the cluster's archive directory
    pg.psql("CHECKPOINT")
    arch.switch_and_wait()
    return arch


def now_utc(pg: PgCluster) -> str:
    """The server's clock (after the previous commit), ISO 8601 in UTC."""
    return pg.psql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    )


@dataclass
class Restored:
    """A cluster made by ``pitr-restore --start``; stop() before leaving."""

    base: Path
    data_dir: Path
    port: int
    bin_dir: Path

    def psql(self, sql: str, check: bool = True) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=SUPERUSER, PGPASSWORD=PASSWORD)
        res = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "postgres",
            ],
            input=sql,
            env=env,
            capture_output=True,
            text=True,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"psql on restored server failed: {res.stderr}")
        return res.stdout.strip()

    def as_cluster(self) -> PgCluster:
        """View the restored server as a PgCluster (same psql/env helpers)."""
        c = PgCluster(bin_dir=self.bin_dir, base=self.base, port=self.port)
        return c

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                user="postgres",
                capture_output=True,
                check=False,
            )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def pitr(
    arch: Archived, *target: str, action: str = "promote", expect_ok: bool = True
) -> tuple[Restored, subprocess.CompletedProcess[str]]:
    base = Path(tempfile.mkdtemp(prefix="seawall-pitr-", dir="/tmp"))
    os.chmod(base, 0o755)
    data_dir = base / "data"
    port = free_loopback_port()
    res = arch.seawall(
        "postgres",
        "pitr-restore",
        "--data-dir",
        str(data_dir),
        *target,
        "--target-action",
        action,
        "--start",
        "--port",
        str(port),
        "--wait-timeout",
        "120",
        "--json",
    )
    restored = Restored(base, data_dir, port, arch.pg.bin_dir)
    arch.restores.append(base)
    if expect_ok:
        assert res.returncode == 0, f"pitr-restore failed: {res.stdout}\n{res.stderr}"
    return restored, res


def archive_files(backup_dir: Path) -> set[str]:
    root = backup_dir / "postgresql" / "wal"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
