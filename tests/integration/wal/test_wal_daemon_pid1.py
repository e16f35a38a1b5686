"""The detached WAL daemons under a postmaster that is PID 1 (ADR 0018).

In a container without an init, PostgreSQL's postmaster is PID 1 and so
inherits every orphan: the asynchronous pusher that ``wal-push`` starts
detached ends up its child. The postmaster takes any child of its own that
ends by a signal (kill -9, the OOM killer) for a crashed backend: it
terminates every session and reinitialises (postmaster.c, CleanupBackend ->
HandleChildCrash). This runs a real PG15 as PID 1 of its own PID namespace
(``unshare --pid --fork --mount-proc``, as the postgres user through
``setpriv``), archiving through seawall with ``WAL_PUSH_AHEAD``, kills the
pusher with SIGKILL and checks that PostgreSQL did not notice: the session
opened before the kill still answers and the log has no crash line. The
same for the read-ahead reader (on by default) that ``wal-fetch`` starts
under a standby that is PID 1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from seawall.ports import free_loopback_port
from seawall.postgres.wal.pushahead import SPOOL
from seawall.postgres.wal.readahead import DAEMON_MODULE as READER, SPOOL as READ_SPOOL
from tests.conftest import SEAWALL
from tests.integration.wal.asynchelpers import pusher_pids, wait_for
from tests.integration.wal.helpers import wait_archived
from tests.support.pgcluster import PASSWORD, SUPERUSER, PgCluster, make_cluster

CRASH = "terminating any other active server processes"

pytestmark = pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("setpriv") is None or os.geteuid() != 0,
    reason="needs root, unshare and setpriv (util-linux)",
)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _gone(pid: int) -> bool:
    """Reaped (a zombie still has its /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


def _mentioning(text: str) -> list[int]:
    """Pids whose command line mentions ``text`` anywhere (the daemon and whatever
    started it detached)."""
    want = text.encode()
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if want in Path(f"/proc/{entry}/cmdline").read_bytes():
                    out.append(int(entry))
            except OSError:
                continue
    return out


class Pid1Postgres:
    """PG15 as PID 1 of a new PID namespace; ``host_pid`` is its pid out here."""

    def __init__(self, pg: PgCluster, env: dict[str, str]) -> None:
        self.pg = pg
        self.log = self.pg.base / "pid1.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                 "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                 str(self.pg.bin_dir / "postgres"), "-D", str(self.pg.datadir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        wait_for(lambda: _children(self.proc.pid) != [], 60, "unshare's child")
        (self.host_pid,) = _children(self.proc.pid)
        wait_for(self._accepts, 120, f"PostgreSQL as PID 1 to accept connections: {self.text()}")

    def _accepts(self) -> bool:
        assert self.proc.poll() is None, self.text()
        return self.pg.psql("SELECT 1", check=False) == "1"

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.pg.host, port=self.pg.port, user=SUPERUSER, password=PASSWORD,
            dbname="postgres", autocommit=True,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Never pg_ctl: postmaster.pid says 1, which is the host's init out here."""
        if self.proc.poll() is None:
            os.kill(self.host_pid, signal.SIGQUIT)  # immediate; the namespace goes with it
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.pg.base, ignore_errors=True)


@pytest.fixture
def pid1(backup_dir: Path) -> Iterator[Pid1Postgres]:
    pg = make_cluster(
        extra_conf={
            "archive_mode": "on",
            "archive_command": f"'{SEAWALL} postgres wal-push %p'",
            "wal_keep_size": "0",
        },
        start=False,
    )
    env = {
        "BACKUP_DIR": str(backup_dir),
        "WAL_PUSH_AHEAD": "4",
        "WAL_PUSH_AHEAD_IDLE": "600",  # alive until killed
    }
    server = Pid1Postgres(pg, env)
    try:
        yield server
    finally:
        server.stop()


def test_a_daemon_killed_by_a_signal_does_not_crash_a_pid1_postmaster(
    pid1: Pid1Postgres,
) -> None:
    """kill -9 of the detached pusher: PostgreSQL goes on as if nothing happened."""
    pg = pid1.pg
    assert (pg.datadir / "postmaster.pid").read_text().split("\n")[0] == "1"  # really PID 1
    pg.psql("CREATE TABLE t (x int)")
    last = ""
    for i in range(6):  # a backlog of .ready segments: the first wal-push starts the pusher
        pg.psql(f"INSERT INTO t SELECT generate_series({i * 100}, {i * 100 + 99})")
        last = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_archived(pg, last, 180)
    wait_for(lambda: len(pusher_pids(pg.datadir)) == 1, 60, "the pusher")
    (pusher,) = pusher_pids(pg.datadir)
    ours = _mentioning(str(pg.datadir / "pg_wal" / SPOOL))  # the pusher, and any supervisor
    assert pusher in ours
    # every one of them is in the postmaster's namespace, an orphan it inherited
    for pid in ours:
        assert _ppid(pid) in (pid1.host_pid, *ours), (pid, _ppid(pid))
    assert any(_ppid(pid) == pid1.host_pid for pid in ours)

    _kill_and_check(pid1, pusher, ours, "SELECT count(*) FROM t", "600")

    # archiving goes on: the next wal-push starts a new pusher
    pg.psql("INSERT INTO t VALUES (1)")
    more = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_archived(pg, more, 180)
    assert CRASH not in pid1.text()


def _kill_and_check(
    pid1: Pid1Postgres, daemon: int, ours: list[int], query: str, expected: str
) -> None:
    """kill -9 ``daemon``; once it and its supervisor are reaped, PostgreSQL is untouched."""
    with pid1.connect() as session:
        before = session.execute("SELECT pg_backend_pid()").fetchone()
        os.kill(daemon, signal.SIGKILL)
        # reaped by whoever waits for it, then whatever started it has ended too
        wait_for(lambda: all(_gone(pid) for pid in ours), 60, "the daemons to be reaped")
        # a connection accepted now was accepted after the postmaster's SIGCHLD handler ran
        assert pid1.pg.psql(query, check=False) == expected, pid1.text()[-3000:]
        try:  # the session opened before the kill is still the same backend
            after = session.execute("SELECT pg_backend_pid()").fetchone()
        except psycopg.OperationalError as exc:
            pytest.fail(f"the session was terminated: {exc}\n{pid1.text()[-3000:]}")
        assert after == before
    assert CRASH not in pid1.text(), pid1.text()[-3000:]
    assert "terminated by signal" not in pid1.text(), pid1.text()[-3000:]


def test_a_read_ahead_reader_killed_by_a_signal_does_not_crash_a_pid1_standby(
    backup_dir: Path,
) -> None:
    """A standby as PID 1 restoring from the archive through wal-fetch (the read-ahead
    on, as by default): kill -9 of its reader leaves PostgreSQL untouched."""
    push = f"'env BACKUP_DIR={backup_dir} {SEAWALL} postgres wal-push %p'"
    source = make_cluster(
        extra_conf={"archive_mode": "on", "archive_command": push, "wal_keep_size": "0"}
    )
    standby: Pid1Postgres | None = None
    base = Path(tempfile.mkdtemp(prefix="seawall-pg-", dir="/tmp"))
    try:
        source.psql("CREATE TABLE t (x int)")
        source.psql("INSERT INTO t SELECT generate_series(1, 100)")
        wait_archived(source, source.psql("SELECT pg_walfile_name(pg_switch_wal())"), 120)
        os.chmod(base, 0o755)
        pg = PgCluster(bin_dir=source.bin_dir, base=base, port=free_loopback_port())
        pg.sockdir.mkdir()
        for d in (pg.base, pg.sockdir):
            shutil.chown(d, "postgres", "postgres")
        res = subprocess.run(
            [str(pg.bin_dir / "pg_basebackup"), "-h", source.host, "-p", str(source.port),
             "-U", SUPERUSER, "-D", str(pg.datadir), "-X", "none", "-c", "fast"],
            env=source.env(), user="postgres", capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        for i in range(6):  # segments for the standby to restore: the reader reads ahead
            source.psql(f"INSERT INTO t SELECT generate_series({101 + i * 100}, {200 + i * 100})")
            last = source.psql("SELECT pg_walfile_name(pg_switch_wal())")
        wait_archived(source, last, 180)
        pg.set_conf(
            port=str(pg.port),
            unix_socket_directories=f"'{pg.sockdir}'",
            archive_mode="off",
            hot_standby="on",
            restore_command=f"'{SEAWALL} postgres wal-fetch %f %p'",
        )
        (pg.datadir / "standby.signal").touch()
        shutil.chown(pg.datadir / "standby.signal", "postgres", "postgres")
        env = {"BACKUP_DIR": str(backup_dir), "WAL_READ_AHEAD_IDLE": "600"}
        standby = Pid1Postgres(pg, env)
        assert (pg.datadir / "postmaster.pid").read_text().split("\n")[0] == "1"
        wait_for(
            lambda: pg.psql("SELECT count(*) FROM t", check=False) == "700",
            180,
            f"the standby to replay the archive: {standby.text()[-2000:]}",
        )
        spool = str(pg.datadir / "pg_wal" / READ_SPOOL)

        def readers() -> list[int]:
            return [p for p in _mentioning(spool) if READER.encode() in _argv(p)]

        wait_for(lambda: len(readers()) == 1, 60, "the read-ahead reader")
        (reader,) = readers()
        ours = _mentioning(spool)
        assert any(_ppid(pid) == standby.host_pid for pid in ours)
        _kill_and_check(standby, reader, ours, "SELECT count(*) FROM t", "700")
    finally:
        if standby is not None:
            standby.stop()
        shutil.rmtree(base, ignore_errors=True)
        source.destroy()


def _argv(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
