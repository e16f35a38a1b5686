"""A throwaway PostgreSQL 15 cluster for the benchmarks.

initdb runs as the ``postgres`` user (PostgreSQL refuses root) in a directory
under /tmp. Bench-specific settings live in ``bench.conf``, rewritten at every
start, so that a cached data directory can be copied and started on a fresh
port. The data directory with generated data is cached under
/tmp/seawall-bench-cache/<key> because generating 1 GB takes minutes and
copying it takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from seawall.ports import free_loopback_port

PG_BIN = Path(os.environ.get("SEAWALL_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
CACHE_ROOT = Path("/tmp/seawall-bench-cache")


def pg_bin(name: str) -> str:
    return str(PG_BIN / name)


def chown_postgres(path: Path) -> None:
    pw = pwd.getpwnam(PG_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def make_tmpdir(prefix: str, *, for_postgres: bool = False) -> Path:
    """mkdtemp under /tmp, optionally owned by postgres (never pytest's tmp)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if for_postgres:
        chown_postgres(path)
        path.chmod(0o700)
    return path


def _as_postgres(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        user=PG_USER,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
    )


class Cluster:
    """One running postmaster. Use as a context manager; ``stop`` removes it."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root  # owned by postgres; holds data/, log, sockets
        self.datadir = root / "data"
        self.port = port
        self.running = False

    @classmethod
    def create(cls) -> Cluster:
        root = make_tmpdir("seawall-bench-pg-", for_postgres=True)
        cluster = cls(root, free_loopback_port())
        try:
            _as_postgres(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(cluster.datadir),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            conf = cluster.datadir / "postgresql.conf"
            with conf.open("a") as fh:
                fh.write("\ninclude_if_exists = 'bench.conf'\n")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cluster

    @classmethod
    def from_template(cls, template: Path) -> Cluster:
        """Copy a cached (stopped) data directory and use it on a new port."""
        root = make_tmpdir("seawall-bench-pg-", for_postgres=True)
        cluster = cls(root, free_loopback_port())
        try:
            subprocess.run(
                ["cp", "-a", str(template), str(cluster.datadir)], check=True, timeout=600
            )
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cluster

    @property
    def socket_dir(self) -> Path:
        return self.root

    def write_conf(self) -> None:
        text = f"""
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self.socket_dir}'
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
max_wal_senders = 10
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
log_min_messages = warning
log_checkpoints = off
"""
        path = self.datadir / "bench.conf"
        path.write_text(text)
        chown_postgres(path)

    def start(self) -> None:
        self.write_conf()
        _as_postgres(
            [
                pg_bin("pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.root / "postgres.log"),
                "-w",
                "-t",
                "120",
                "start",
            ],
            timeout=180,
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if not self.running:
            return
        _as_postgres(
            [pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "120", "stop"],
            timeout=180,
        )
        self.running = False

    def destroy(self) -> None:
        """Stop (if running) and delete everything; safe to call twice."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # --- access -----------------------------------------------------------

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.conninfo(dbname), autocommit=True)

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(sql.encode())
            return cur.fetchall() if cur.description else []

    def scalar(self, sql: str, dbname: str = "postgres") -> object:
        rows = self.execute(sql, dbname)
        return rows[0][0] if rows else None

    def libpq_env(self, dbname: str | None = None) -> dict[str, str]:
        """Environment for libpq tools (and seawall) pointing at this cluster."""
        env = {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": PG_USER}
        if dbname:
            env["PGDATABASE"] = dbname
        return env

    def wal_segment_size(self) -> int:
        return int(str(self.scalar("SHOW wal_segment_size")).replace("MB", "")) * 1024 * 1024

    def set_archive_command(self, command: str) -> None:
        """Change archive_command at run time (archive_mode is already on)."""
        with self.connect() as conn:
            # ALTER SYSTEM takes no bind parameters: quote client-side
            conn.execute(
                sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(command))
            )
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)

    def ready_count(self) -> int:
        status = self.datadir / "pg_wal" / "archive_status"
        try:
            return sum(1 for n in os.listdir(status) if n.endswith(".ready"))
        except OSError:
            return 0


def cache_dir(key: str) -> Path:
    return CACHE_ROOT / key
