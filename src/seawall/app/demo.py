"""``seawall demo``: the whole job, end to end, on a throwaway cluster.

A new user should see seawall work in a minute on a fresh machine with
nothing but PostgreSQL binaries installed: this starts a private PostgreSQL
cluster (as the ``postgres`` user when run as root, because initdb refuses
root; data directory under /tmp; listening on 127.0.0.1 and a private
socket directory only), loads sample data, makes an age key, takes a
zstd-compressed, encrypted backup, verifies it deeply, restores it into a
new database, compares the data, and cleans everything up (the backup
directory is kept with ``--keep``).

It uses the same use cases as the real commands, in-process, with a
:class:`Settings` built from explicit values (the caller's environment does
not leak in: no risk of touching a real database or backup volume).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seawall.errors import ConfigError, SeawallError, VerificationError
from seawall.ports import free_loopback_port

SAMPLE_SQL = """
CREATE SCHEMA shop;
CREATE SCHEMA audit;
CREATE TABLE shop.customers (
    id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE,
    tags text[], profile jsonb, created_at timestamptz DEFAULT now());
CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY, customer_id bigint REFERENCES shop.customers(id),
    total numeric(12,2), items jsonb, placed_at timestamptz);
CREATE TABLE audit.events (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(),
    what text, payload bytea);
CREATE FUNCTION audit.log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit.events(what, payload) VALUES ('order ' || NEW.id, decode(md5(NEW.id::text), 'hex'));
RETURN NEW; END $$;
CREATE TRIGGER orders_audit AFTER INSERT ON shop.orders FOR EACH ROW EXECUTE FUNCTION audit.log_order();
INSERT INTO shop.customers (name, email, tags, profile, created_at)
SELECT 'customer ' || g, 'c' || g || '@example.com', ARRAY['t' || (g % 7), 'segment-' || (g % 3)],
       jsonb_build_object('city', 'city-' || (g % 97), 'score', g % 1000, 'vip', g % 50 = 0),
       timestamptz '2025-01-01' + g * interval '37 seconds'
FROM generate_series(1, 20000) g;
INSERT INTO shop.orders (customer_id, total, items, placed_at)
SELECT 1 + (g % 20000), round((g % 9973) * 1.37, 2),
       jsonb_build_array(jsonb_build_object('sku', 'sku-' || (g % 500), 'qty', 1 + g % 5)),
       timestamptz '2025-06-01' + g * interval '11 seconds'
FROM generate_series(1, 50000) g;
CREATE MATERIALIZED VIEW shop.revenue_by_city AS
SELECT c.profile->>'city' AS city, sum(o.total) AS revenue
FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id GROUP BY 1;
SELECT lo_from_bytea(0, convert_to('a large object, restored byte for byte', 'UTF8'));
"""


@dataclass
class DemoCluster:
    """A private PostgreSQL cluster under /tmp."""

    bin_dir: Path
    base: Path
    port: int
    password: str = field(repr=False)
    as_postgres: bool

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        kw: dict[str, Any] = {"capture_output": True, "text": True, "check": False}
        if self.as_postgres:
            kw.update(user="postgres", group="postgres")
        return subprocess.run(argv, **kw)

    def init_and_start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "sock").mkdir(exist_ok=True)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_postgres:
            for p in (self.base, self.base / "sock", pwfile):
                shutil.chown(p, "postgres", "postgres")
        res = self._run([
            str(self.bin_dir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
            "--pwfile", str(pwfile), "-A", "scram-sha-256", "--no-sync", "-E", "UTF8",
            "--locale", "C",
        ])  # fmt: skip
        pwfile.unlink()
        if res.returncode != 0:
            raise SeawallError(f"demo: initdb failed: {res.stderr.strip()[-300:]}")
        with open(self.datadir / "postgresql.auto.conf", "a") as fh:
            fh.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.base / 'sock'}'\nfsync = off\n"
            )
        res = self._run([
            str(self.bin_dir / "pg_ctl"), "-D", str(self.datadir), "-l",
            str(self.base / "server.log"), "-w", "-t", "60", "start",
        ])  # fmt: skip
        if res.returncode != 0:
            raise SeawallError(f"demo: PostgreSQL did not start: {res.stderr.strip()[-300:]}")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]
            )


def find_server_bin(bin_dir: Path | None) -> Path:
    """A directory with initdb/pg_ctl/postgres (PG_BIN_DIR, else Debian's newest 15+)."""
    candidates = [bin_dir] if bin_dir else []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        candidates += [
            root / d.name / "bin"
            for d in sorted(
                root.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0, reverse=True
            )
            if d.name.isdigit()
        ]
    for cand in candidates:
        if cand is not None and (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    raise ConfigError(
        "demo: PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15 "
        "or set PG_BIN_DIR"
    )


@contextmanager
def demo_cluster(bin_dir: Path) -> Iterator[DemoCluster]:
    base = Path(tempfile.mkdtemp(prefix="seawall-demo-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    as_postgres = os.geteuid() == 0
    if as_postgres:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ConfigError(
                "demo: running as root needs a 'postgres' user to run initdb as"
            ) from exc
    cluster = DemoCluster(
        bin_dir, base, free_loopback_port(), secrets.token_urlsafe(18), as_postgres
    )
    try:
        cluster.init_and_start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def run_demo(
    *,
    bin_dir: Path | None = None,
    keep: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo; returns a summary (what was done, where the files are)."""
    from seawall.app.backup import backup_database
    from seawall.catalog.store import backup_prefix
    from seawall.context import Context
    from seawall.log import register_secret
    from seawall.pipeline.keys import generate_identity, identity_file_text
    from seawall.postgres.logical import server, stats
    from seawall.postgres.logical.restore import restore
    from seawall.postgres.logical.select import BackupSource
    from seawall.postgres.logical.verify import verify_source
    from seawall.postgres.tools.base import ConnParams
    from seawall.settings import Settings

    t0 = time.monotonic()
    server_bin = find_server_bin(bin_dir)
    work = Path(tempfile.mkdtemp(prefix="seawall-demo-", dir="/tmp"))
    backup_dir = work / "backups"
    summary: dict[str, Any] = {"backup_dir": str(backup_dir), "kept": keep}
    try:
        with demo_cluster(server_bin) as cluster:
            register_secret(cluster.password)
            say(
                f"1. started a throwaway PostgreSQL cluster ({server_bin}) on 127.0.0.1:{cluster.port}"
            )
            secret, public = generate_identity()
            register_secret(secret)
            key_file = work / "demo-age.key"
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(identity_file_text(secret, public))
            say(f"2. made an age key pair; secret key in {key_file}")
            # Every option that matters is given explicitly so the environment cannot redirect the demo.
            settings = Settings.model_validate(
                {
                    "backup_dir": backup_dir,
                    "db_host": "127.0.0.1",
                    "db_port": cluster.port,
                    "db_user": "postgres",
                    "db_name": "postgres",
                    "db_password": cluster.password,
                    "pgpassfile": None,
                    "databases": ["shop"],
                    "pg_bin_dir": server_bin,
                    "compression": "zstd",
                    "encryption": True,
                    "encryption_key": None,
                    "encryption_recipients": [public],
                    "encryption_recipients_file": None,
                    "encryption_identity": None,
                    "encryption_identity_files": [key_file],
                    "verify_backup": True,
                    "prune_after_backup": False,
                    "restore_jobs": 2,
                    "compression_level": None,
                    "compression_threads": 0,
                    "lock_timeout": 10.0,
                    "log_file": None,
                }
            )
            ctx = Context(settings)
            params = ConnParams.from_settings(settings)
            with server.connect(params, "postgres") as conn:
                server.create_database(conn, "shop")
            with server.connect(params, "shop") as conn:
                conn.execute(SAMPLE_SQL)
                before = stats.collect(conn)
            rows = sum(t.rows for t in before.tables.values())
            say(
                f"3. loaded sample data into database 'shop': {len(before.tables)} tables, {rows} rows, 1 large object"
            )
            result = backup_database(ctx, "shop", verify=True)
            m = result.manifest
            folder = backup_dir / backup_prefix(m.engine, m.kind, m.series, m.id)
            say(
                f"4. backed up 'shop' (pg_dump -Fc | zstd | age): {m.raw_size} bytes raw -> "
                f"{m.stored_size} bytes stored in {folder}"
            )
            source = BackupSource(ctx.storage, f"backup {m.id}", m, in_catalog=True)
            verification = verify_source(ctx, source, deep=True)
            say(
                f"5. verified it deeply (sha256, decrypt, restore into a scratch database): {verification.checks[-1]}"
            )
            restore(ctx, source, "shop_restored", jobs=2)
            with server.connect(params, "shop_restored") as conn:
                after = stats.collect(conn)
            problems = stats.compare(before, after)
            if problems:
                raise VerificationError("demo: restored data differs: " + "; ".join(problems))
            say("6. restored it into database 'shop_restored' and compared every table: identical")
            summary.update(
                backup_id=m.id,
                backup_folder=str(folder),
                files=sorted(p.name for p in folder.iterdir()),
                tables=len(before.tables),
                rows=rows,
                raw_size=m.raw_size,
                stored_size=m.stored_size,
                identical=True,
            )
        say("7. stopped and removed the throwaway cluster")
    finally:
        if keep:
            say(f"   kept the backups in {backup_dir} (age key: {work / 'demo-age.key'})")
        else:
            shutil.rmtree(work, ignore_errors=True)
            say(f"   removed {work} (use --keep to keep the backups)")
    summary["seconds"] = round(time.monotonic() - t0, 1)
    return summary
