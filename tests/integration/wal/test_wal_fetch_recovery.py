"""A recovery seawall does not start: restore_command set by hand, no pitr-restore.

A real PostgreSQL 15 cluster archives through ``seawall wal-push``; a base
backup is taken with ``pg_basebackup -X none`` (so every segment after it
must come from the archive); the restored copy gets ``recovery.signal`` and
the documented wrapper (docs/wal-archiving.md) as restore_command, and is
started with ``pg_ctl``. The wrapper also notes what the read-ahead spool
held before each call, which is how the test sees segments handed over from
the spool (only the lean wal-fetch takes from it).

Three recoveries from the same archive: all of it (every row back, most
segments from the spool), a corrupt segment (recovery stops, loudly, never
promotes), a missing segment (recovery ends there normally and promotes).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seawall.ports import free_loopback_port
from tests.conftest import SEAWALL
from tests.integration.wal.helpers import Archived, Restored, make_archived
from tests.support.pgcluster import PASSWORD, SUPERUSER, PgCluster

ROUNDS = 6


def _as_postgres(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        cmd, user="postgres", group="postgres", text=True, capture_output=True, **kw
    )


def _wrapper(base: Path, arch: Archived, key: Path) -> Path:
    script = base / "wal-fetch.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'ls "$(dirname "$2")/.seawall-readahead" 2>/dev/null | tr "\\n" " " >> {base}/calls\n'
        f'echo "<- $1" >> {base}/calls\n'
        f"env -i PATH=/usr/bin:/bin BACKUP_DIR={arch.backup_dir} PG_CLUSTER_NAME=main \\\n"
        f"    ENCRYPTION_IDENTITY_FILE={key} SEAWALL_WAL_READ_AHEAD=4 \\\n"
        f'    SEAWALL_WAL_READ_AHEAD_IDLE=3 {SEAWALL} postgres wal-fetch "$1" "$2"\n'
        "rc=$?\n"
        "[ $rc -gt 1 ] && exit 126\n"
        "exit $rc\n"
    )
    script.chmod(0o700)
    shutil.chown(script, "postgres", "postgres")
    return script


def _wait(cond: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Recovery:
    """A copy of the base backup recovering through the wrapper."""

    def __init__(self, template: Path, arch: Archived, key: Path) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="seawall-rc-", dir="/tmp"))
        self.base.chmod(0o755)
        shutil.chown(self.base, "postgres", "postgres")
        self.data = self.base / "data"
        res = subprocess.run(["cp", "-a", str(template), str(self.data)], capture_output=True)
        assert res.returncode == 0, res.stderr
        self.port = free_loopback_port()
        self.log = self.base / "server.log"
        (self.base / "calls").touch()
        shutil.chown(self.base / "calls", "postgres", "postgres")
        script = _wrapper(self.base, arch, key)
        with open(self.data / "postgresql.auto.conf", "a") as fh:
            fh.write(
                f"port = {self.port}\nunix_socket_directories = '{self.base}'\n"
                "archive_mode = off\nhot_standby = on\n"
                f"restore_command = '{script} %f %p'\n"
            )
        (self.data / "recovery.signal").touch()
        shutil.chown(self.data / "recovery.signal", "postgres", "postgres")
        self.restored = Restored(self.base, self.data, self.port, arch.pg.bin_dir)
        res = _as_postgres(
            [str(arch.pg.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "start"],
            cwd="/tmp",
        )
        assert res.returncode == 0, res.stderr

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def promoted(self) -> bool:
        return "database system is ready to accept connections" in self.log_text()

    def calls(self) -> list[str]:
        return (self.base / "calls").read_text().splitlines()

    def destroy(self) -> None:
        self.restored.destroy()


def _rows(pg: PgCluster | Restored) -> int:
    return int(pg.psql("SELECT count(*) FROM t"))


def test_hand_set_restore_command_replays_through_lean_fetch_and_read_ahead(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    work = Path(tempfile.mkdtemp(prefix="seawall-rc-base-", dir="/tmp"))
    recoveries: list[Recovery] = []
    try:
        work.chmod(0o755)
        shutil.chown(work, "postgres", "postgres")
        key = work / "identity.txt"
        shutil.copy(arch.key_file, key)
        key.chmod(0o600)
        shutil.chown(key, "postgres", "postgres")
        template = work / "base"
        res = _as_postgres(
            [
                str(pg.bin_dir / "pg_basebackup"),
                "-h", "127.0.0.1", "-p", str(pg.port), "-U", SUPERUSER,
                "-D", str(template), "-X", "none", "-c", "fast",
            ],
            env={"PGPASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
            cwd="/tmp",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        pg.psql("CREATE TABLE t (id int, note text)")
        counts, segments = [], []
        for r in range(ROUNDS):
            pg.psql(f"INSERT INTO t SELECT g, 'round {r} ' || g FROM generate_series(1, 20000) g")
            counts.append(_rows(pg))
            segments.append(arch.switch_and_wait())
        root = backup_dir / "postgresql" / "wal" / "main"

        # 1. the whole archive: every row back, segments handed over from the spool
        ok = Recovery(template, arch, key)
        recoveries.append(ok)
        _wait(lambda: ok.promoted() or "FATAL" in ok.log_text(), "the end of recovery")
        assert ok.promoted(), ok.log_text()[-3000:]
        assert _rows(ok.restored) == counts[-1]
        calls = ok.calls()
        from_spool = [c for c in calls if _spooled(c)]
        print(f"restore_command calls: {len(calls)}, segment already spooled: {len(from_spool)}")
        assert len(from_spool) >= 2, calls
        spool = ok.data / "pg_wal" / ".seawall-readahead"
        _wait(lambda: not spool.exists(), "the idle reader to remove its spool", 60)
        ok.destroy()

        # 2. a corrupt segment in the middle: recovery stops loudly and never promotes
        (stored,) = root.rglob(f"{segments[2]}-*")
        original = stored.read_bytes()
        blob = bytearray(original)
        blob[len(blob) // 2] ^= 0x01
        stored.write_bytes(bytes(blob))
        bad = Recovery(template, arch, key)
        recoveries.append(bad)
        _wait(lambda: "corrupt" in bad.log_text(), "the corrupt segment to stop it")
        _wait(lambda: not (bad.data / "postmaster.pid").exists(), "the server to stop")
        text = bad.log_text()
        assert "corrupt" in text and segments[2] in text, text[-3000:]
        assert not bad.promoted() and "selected new timeline" not in text
        stored.write_bytes(original)
        bad.destroy()

        # 3. a missing segment: recovery ends before it, normally, and promotes
        (stored,) = root.rglob(f"{segments[3]}-*")
        aside = work / stored.name
        shutil.move(stored, aside)
        short = Recovery(template, arch, key)
        recoveries.append(short)
        _wait(lambda: short.promoted() or "FATAL" in short.log_text(), "the end of recovery")
        assert short.promoted(), short.log_text()[-3000:]
        assert _rows(short.restored) == counts[2]
        shutil.move(aside, stored)
    finally:
        for rec in recoveries:
            rec.destroy()
        shutil.rmtree(work, ignore_errors=True)


def _spooled(call: str) -> bool:
    """A wrapper line: was the segment asked for already in the spool?"""
    listing, _, name = call.rpartition("<- ")
    return bool(name) and f"{name.strip()}-" in listing


def test_pitr_restore_without_start_uses_the_read_ahead(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    """pitr-restore without --start writes a wrapper whose wal-fetch reads ahead
    (with --start its own prefetcher does, and the wrapper turns this one off)."""
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    arch.basebackup()
    pg.psql("CREATE TABLE t (id int, note text)")
    for r in range(4):
        pg.psql(f"INSERT INTO t SELECT g, 'round {r} ' || g FROM generate_series(1, 20000) g")
        arch.switch_and_wait()
    rows = _rows(pg)
    base = Path(tempfile.mkdtemp(prefix="seawall-pitr-", dir="/tmp"))
    base.chmod(0o755)
    port = free_loopback_port()
    restored = Restored(base, base / "data", port, pg.bin_dir)
    try:
        res = arch.seawall(
            "postgres", "pitr-restore", "--data-dir", str(base / "data"), "--latest",
            "--port", str(port),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        script = (base / ".data.seawall-recovery" / "restore_command.sh").read_text()
        assert "SEAWALL_WAL_READ_AHEAD=$ahead" in script
        log = base / "server.log"
        log.touch()
        shutil.chown(log, "postgres", "postgres")
        res = _as_postgres(
            [str(pg.bin_dir / "pg_ctl"), "-D", str(base / "data"), "-l", str(log), "start"],
            cwd="/tmp",
        )
        assert res.returncode == 0, res.stderr
        _wait(
            lambda: (
                "database system is ready to accept connections" in log.read_text()
                or "FATAL" in log.read_text()
            ),
            "the end of recovery",
        )
        assert "database system is ready to accept connections" in log.read_text()
        assert _rows(restored) == rows
        # the reader is still there (it leaves after WAL_READ_AHEAD_IDLE, 60 s)
        assert (base / "data" / "pg_wal" / ".seawall-readahead" / ".lock").exists()
    finally:
        restored.destroy()
