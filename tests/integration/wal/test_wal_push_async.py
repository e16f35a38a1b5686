"""Asynchronous wal-push (``WAL_PUSH_AHEAD``, ADR 0017) against a real S3 server and disk.

The pg_wal directories are laid out as PostgreSQL keeps them (segments with
a valid long header, ``archive_status/*.ready``) and wal-push runs from the
data directory with ``pg_wal/NAME`` as the archiver runs it; the last test
is a real PG15 cluster archiving through it and a recovery from S3.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seawall.ports import free_loopback_port
from seawall.postgres.wal.pushahead import file_identity, marker_text, repository_identity
from tests.conftest import SEAWALL
from tests.integration.storage.conftest import new_bucket, own_s3_server, s3_server
from tests.integration.wal.asynchelpers import (
    done,
    env_without_seawall,
    markers,
    name_of,
    pusher_pids,
    ready,
    spool,
    wait_for,
    wal_push,
)  # fmt: skip
from tests.integration.wal.helpers import wait_archived
from tests.integration.wal.s3helpers import _decode, _env, _keys, private_dir
from tests.support.holdproxy import HoldingProxy
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

__all__ = ["own_s3_server", "private_dir", "s3_server"]  # fixtures used by name below


def _wal_keys(server: S3Server, bucket: str, name: str) -> list[str]:
    return [k for k in _keys(server, bucket) if f"/{name}-" in k]


def _stop_pushers(root: Path) -> None:
    for pid in pusher_pids(root):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A data directory; any pusher left on it is killed at the end."""
    path = tmp_path / "data"
    path.mkdir()
    yield path
    _stop_pushers(path)


def _local_env(tmp: Path, **extra: str) -> dict[str, str]:
    return env_without_seawall(BACKUP_DIR=str(tmp / "backups"), **extra)


def _archived_locally(tmp: Path, name: str) -> list[Path]:
    return sorted((tmp / "backups").rglob(f"{name}-*"))


def test_pusher_archives_ahead_and_wal_push_takes_its_markers(
    s3_server: S3Server, root: Path, age_keys: tuple[Path, str]
) -> None:
    """The first wal-push starts the pusher; it archives the next WAL_PUSH_AHEAD .ready
    segments (never a .partial or .history) before PostgreSQL asks; wal-push of such a
    segment is a hit (marker gone, nothing stored again); every object holds its segment."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}/a", public, WAL_PUSH_AHEAD="3", WAL_PUSH_AHEAD_IDLE="3")
    names = [name_of(0x20 + i) for i in range(8)]
    content = ready(root, names)
    status = root / "pg_wal" / "archive_status"
    shutil.copyfile(root / "pg_wal" / names[-1], root / "pg_wal" / f"{name_of(0x30)}.partial")
    (status / f"{name_of(0x30)}.partial.ready").touch()
    (root / "pg_wal" / "00000002.history").write_text("1\t0/3000000\tno recovery target\n")
    (status / "00000002.history.ready").touch()

    first = wal_push(root, names[0], env)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    done(root, names[0])
    wait_for(lambda: markers(root) == names[1:4], what="markers for the next 3 segments")
    for name in names[1:4]:  # stored before PostgreSQL asked for them
        assert len(_wal_keys(s3_server, bucket, name)) == 1
    time.sleep(1)  # nothing beyond WAL_PUSH_AHEAD while PostgreSQL does not move
    assert markers(root) == names[1:4]
    assert _wal_keys(s3_server, bucket, names[4]) == []
    stored = _keys(s3_server, bucket)
    assert not any(".partial" in k or ".history" in k for k in stored), stored

    for name in names[1:]:
        res = wal_push(root, name, env)
        assert res.returncode == 0 and res.stderr == "", (name, res.stderr)
        assert name not in markers(root)
        done(root, name)
    for name in names:
        (stored_key,) = _wal_keys(s3_server, bucket, name)
        assert _decode(s3_server, bucket, stored_key, key) == content[name]
    wait_for(lambda: pusher_pids(root) == [], 60, "the pusher to exit when idle")
    assert markers(root) == []


def test_a_marker_proves_nothing_for_another_repository_or_a_rewritten_file(
    tmp_path: Path, root: Path
) -> None:
    """A marker is believed only for the repository and the very file it names: a
    forged good one is believed (so the refusals below are meaningful), one for
    another BACKUP_DIR or PG_CLUSTER_NAME, one whose file was rewritten (same size and
    mtime), a symlink and a garbage one are not: those segments are archived."""
    env = _local_env(tmp_path, WAL_PUSH_AHEAD="2")
    setup = [name_of(0x40)]
    ready(root, setup)  # a first push creates archive.json
    assert wal_push(root, setup[0], dict(env, WAL_PUSH_AHEAD="0")).returncode == 0
    names = [name_of(0x41 + i) for i in range(6)]
    ready(root, names)
    sp = spool(root)
    sp.mkdir(mode=0o700)
    # the test holds the pusher's lock: wal-push sees a live pusher that archives
    # nothing, so every push below is a foreground one or a hit, and no marker moves
    held = os.open(sp / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    repo = repository_identity(env)

    def forge(name: str, text: bytes) -> None:
        (sp / name).write_bytes(text)
        (sp / name).chmod(0o600)

    def ident(name: str) -> str:
        return file_identity(os.stat(root / "pg_wal" / name))

    good, other_dir, other_cluster, rewritten, link, garbage = names
    forge(good, marker_text(repo, ident(good), good))
    other = dict(env, BACKUP_DIR=str(tmp_path / "elsewhere"))
    forge(other_dir, marker_text(repository_identity(other), ident(other_dir), other_dir))
    forge(other_cluster, marker_text(
        repository_identity(dict(env, PG_CLUSTER_NAME="db2")), ident(other_cluster), other_cluster))  # fmt: skip
    forge(rewritten, marker_text(repo, ident(rewritten), rewritten))
    path = root / "pg_wal" / rewritten
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    (tmp_path / "linked").write_bytes(marker_text(repo, ident(link), link))
    (sp / link).symlink_to(tmp_path / "linked")
    forge(garbage, b"seawall-pushed 1\n")

    try:
        for name in names:
            res = wal_push(root, name, env)
            assert res.returncode == 0, (name, res.stderr)
    finally:
        os.close(held)
    assert pusher_pids(root) == []
    assert _archived_locally(tmp_path, good) == []  # believed: nothing pushed
    for name in (other_dir, other_cluster, rewritten, link, garbage):
        (stored,) = _archived_locally(tmp_path, name)
        sha = hashlib.sha256((root / "pg_wal" / name).read_bytes()).hexdigest()[:40]
        assert f"{name}-{sha}" in stored.name
    assert [m for m in markers(root) if m in names] == []


def test_pusher_killed_mid_put_leaves_no_marker(
    s3_server: S3Server, root: Path, age_keys: tuple[Path, str]
) -> None:
    """kill -9 of the pusher while its PUT is half sent: no marker; the segment's
    wal-push pushes it in the foreground and exits 0 with one complete object."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    proxy = HoldingProxy(s3_server.ports["s3"])
    try:
        env = _env(s3_server, f"s3://{bucket}/k", public, WAL_PUSH_AHEAD="2",
                   AWS_ENDPOINT_URL=proxy.endpoint)  # fmt: skip
        first, second = name_of(0x50), name_of(0x51)
        content = ready(root, [first])
        assert wal_push(root, first, env).returncode == 0
        done(root, first)
        wait_for(lambda: len(pusher_pids(root)) == 1, what="the pusher")
        proxy.arm()
        content.update(ready(root, [second]))
        assert proxy.holding.wait(120), "the pusher's PUT did not reach the proxy"
        assert second.encode() in proxy.held_request
        (pid,) = pusher_pids(root)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: pusher_pids(root) == [], what="the pusher to die")
        proxy.release.set()
        assert markers(root) == []
        assert (spool(root) / f".{second}.pushing").exists()  # what kill -9 left
        res = wal_push(root, second, env)
        assert res.returncode == 0, res.stderr
        (stored,) = _wal_keys(s3_server, bucket, second)
        assert _decode(s3_server, bucket, stored, key) == content[second]
    finally:
        proxy.close()


def test_s3_down_reaches_postgres_and_nothing_is_marked(
    own_s3_server: S3Server, root: Path, age_keys: tuple[Path, str]
) -> None:
    """The server dies with the pusher running: its pushes fail, no marker; PostgreSQL's
    wal-push of the next segment exits 7 with one line; after the restart it archives."""
    _, public = age_keys
    server = own_s3_server
    bucket = new_bucket(server)
    env = _env(server, f"s3://{bucket}/d", public, WAL_PUSH_AHEAD="4",
               SEAWALL_WAL_S3_DEADLINE="3")  # fmt: skip
    first = name_of(0x60)
    ready(root, [first])
    assert wal_push(root, first, env).returncode == 0
    done(root, first)
    server.kill()
    later = [name_of(0x61 + i) for i in range(3)]
    ready(root, later)
    res = wal_push(root, later[0], env)
    assert res.returncode == 7, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert markers(root) == []
    time.sleep(4)  # the pusher's own tries fail too
    assert markers(root) == []
    server.start()
    for name in later:
        res = wal_push(root, name, env)
        assert res.returncode == 0, res.stderr
        done(root, name)
        assert len(_wal_keys(server, bucket, name)) == 1


def test_two_wal_push_processes_racing(tmp_path: Path, root: Path) -> None:
    """Two wal-push of each segment started together while the pusher works ahead:
    every one exits 0, each segment is archived once, with its content."""
    env = _local_env(tmp_path, WAL_PUSH_AHEAD="4", WAL_PUSH_AHEAD_IDLE="1")
    names = [name_of(0x70 + i) for i in range(8)]
    ready(root, names)
    for name in names:
        procs = [
            subprocess.Popen(
                [SEAWALL, "postgres", "wal-push", f"pg_wal/{name}"],
                cwd=root,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, (name, err)
        done(root, name)
    wait_for(lambda: pusher_pids(root) == [], 120, "the pusher to exit")
    for name in names:
        (stored,) = _archived_locally(tmp_path, name)
        sha = hashlib.sha256((root / "pg_wal" / name).read_bytes()).hexdigest()[:40]
        assert f"{name}-{sha}" in stored.name


@pytest.fixture
def mount_spool(root: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs of our own as pg_wal/.seawall-pushed; unmounted after the test."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = spool(root)
        point.mkdir(parents=True, mode=0o700)
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point

    yield mount
    _stop_pushers(root)
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize("state", ["read-only", "full"])
def test_spool_read_only_or_full(
    tmp_path: Path, root: Path, mount_spool: Callable[[str], Path], state: str
) -> None:
    """A spool that cannot be written never fails a push: every push is a foreground
    one, all archived; no marker appears (and with a read-only spool, no pusher)."""
    env = _local_env(tmp_path, WAL_PUSH_AHEAD="4", WAL_PUSH_AHEAD_IDLE="2")
    names = [name_of(0x80 + i) for i in range(5)]
    ready(root, names)
    if state == "read-only":
        point = mount_spool("size=1m,mode=0700,ro")
    else:
        point = mount_spool("size=64k,mode=0700")
        fd = os.open(point / ".filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with pytest.raises(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
    for name in names:
        res = wal_push(root, name, env)
        assert res.returncode == 0 and res.stderr == "", (name, res.stderr)
        done(root, name)
        assert pusher_pids(root) == []
    assert markers(root) == []
    for name in names:
        assert len(_archived_locally(tmp_path, name)) == 1


def test_pitr_after_async_archiving(
    s3_server: S3Server,
    pg_factory: Callable[..., PgCluster],
    age_keys: tuple[Path, str],
    private_dir: Path,
) -> None:
    """A real PG15 cluster archives into S3 with WAL_PUSH_AHEAD=4 while it switches
    segments faster than one push; a base backup taken by hand recovers through
    restore_command alone up to the last transaction: no segment was lost or damaged."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    secret = private_dir / "aws-secret"
    secret.write_text(s3_server.secret_key + "\n")
    identity = private_dir / "identity.txt"
    shutil.copyfile(key, identity)
    for f in (secret, identity):
        f.chmod(0o400)
        shutil.chown(f, "postgres", "postgres")
    common = (
        f"BACKUP_DIR=s3://{bucket}/pitr AWS_ENDPOINT_URL={s3_server.endpoint} "
        f"AWS_ACCESS_KEY_ID={s3_server.access_key} AWS_SECRET_ACCESS_KEY_FILE={secret}"
    )
    push = (f"'env {common} ENCRYPTION=true ENCRYPTION_RECIPIENTS={public} WAL_PUSH_AHEAD=4 "
            f"WAL_PUSH_AHEAD_IDLE=5 {SEAWALL} postgres wal-push %p'")  # fmt: skip
    pg = pg_factory(
        version=15,
        extra_conf={"archive_mode": "on", "archive_command": push, "wal_keep_size": "0"},
    )
    pg.psql("CREATE TABLE t (x int)")
    pg.psql("INSERT INTO t SELECT generate_series(1, 1000)")
    wait_archived(pg, pg.psql("SELECT pg_walfile_name(pg_switch_wal())"), 60)

    restored = PgCluster(
        bin_dir=pg.bin_dir, base=private_dir / "restored", port=free_loopback_port()
    )
    restored.base.mkdir()
    restored.sockdir.mkdir()
    for d in (restored.base, restored.sockdir):
        shutil.chown(d, "postgres", "postgres")
    backup = subprocess.run(
        [str(pg.bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pg.port), "-U",
         pg.env()["PGUSER"], "-D", str(restored.datadir), "-X", "none", "-c", "fast"],
        env=pg.env(), user="postgres", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    for i in range(12):  # a backlog for the archiver: the pusher works ahead of it
        pg.psql(f"INSERT INTO t SELECT generate_series({1001 + i * 100}, {1100 + i * 100})")
        pg.psql("SELECT pg_switch_wal()")
    last = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_archived(pg, last, 180)
    assert (pg.datadir / "pg_wal" / ".seawall-pushed" / ".requested").exists()

    fetch = f"'env {common} ENCRYPTION_IDENTITY_FILE={identity} {SEAWALL} postgres wal-fetch %f %p'"
    restored.set_conf(
        port=str(restored.port),
        unix_socket_directories=f"'{restored.sockdir}'",
        archive_mode="off",
        restore_command=fetch,
    )
    (restored.datadir / "recovery.signal").touch()
    shutil.chown(restored.datadir / "recovery.signal", "postgres", "postgres")
    try:
        restored.start(timeout=120)
        deadline = time.monotonic() + 180
        while restored.psql("SELECT pg_is_in_recovery()") != "f":
            assert time.monotonic() < deadline, "recovery from S3 did not finish"
            time.sleep(0.2)
        assert restored.psql("SELECT count(*), max(x) FROM t") == "2200|2200"
    finally:
        restored.destroy()


def test_mirrors_get_what_the_pusher_archived(tmp_path: Path, root: Path) -> None:
    """MIRRORS keep their semantics: the pusher's push is a foreground push, so every
    segment it archived ahead reaches the mirror too, no intent record left behind."""
    mirror = tmp_path / "mirror"
    env = _local_env(tmp_path, WAL_PUSH_AHEAD="4", WAL_PUSH_AHEAD_IDLE="1", MIRRORS=str(mirror))
    names = [name_of(0x90 + i) for i in range(6)]
    ready(root, names)
    for name in names:
        res = wal_push(root, name, env)
        assert res.returncode == 0 and res.stderr == "", (name, res.stderr)
        done(root, name)
    # a push the pusher began just before PostgreSQL asked may still be finishing
    wait_for(lambda: pusher_pids(root) == [], 120, "the pusher to exit")
    records = tmp_path / "backups" / "mirrors"
    pending = sorted(str(p.relative_to(records)) for p in records.rglob("*") if p.is_file())
    for name in names:
        (primary,) = _archived_locally(tmp_path, name)
        copies = sorted(mirror.rglob(f"{name}-*"))
        assert copies or any(name in p for p in pending), (name, pending)
        for copy in copies:
            assert copy.name == primary.name and copy.read_bytes() == primary.read_bytes()
    assert pending == [], pending


def test_a_twin_push_never_removes_the_record_the_committer_relies_on(
    tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two lean pushes of one segment into a mirrored local archive (the pusher and
    PostgreSQL's wal-push, ADR 0017): B writes the intent record, A (finding it) writes
    none and commits; B then finds the segment archived. B must not remove the record
    (A's commit is new in the primary and A's copy step looks for exactly that record):
    the mirror gets the segment or the lag stays recorded, never neither.
    Interleaved deterministically in one process, at B's claim."""
    from seawall.postgres.wal import fastpush
    from seawall.runner import wal_fast
    from seawall.storage.mirror_layout import mirror_id
    from tests.integration.wal.test_wal_lean_push import env_for, make_segment, prepare_archive

    backup, mirror = tmp_path / "b", tmp_path / "mirror"
    prepare_archive(backup)
    env = env_for(backup, age_keys[1], MIRRORS=str(mirror))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    seg = make_segment(tmp_path)
    mirrors = [(mirror_id(str(mirror)), str(mirror))]
    claim = fastpush.claim
    committed_by_a: list[fastpush.Archived] = []

    def b_claims(directory: str, name: str) -> int:
        if not committed_by_a:  # A runs its whole push between B's record and B's claim
            monkeypatch.setattr(fastpush, "claim", claim)
            committed_by_a.append(fastpush.push(str(seg), env, mirrors=mirrors))
        return claim(directory, name)

    monkeypatch.setattr(fastpush, "claim", b_claims)
    archived_b = fastpush.push(str(seg), env, mirrors=mirrors)  # B
    (archived_a,) = committed_by_a
    assert archived_a.key == archived_b.key and archived_a.committed
    wal_fast._mirror_lean(archived_b, mirrors)  # B's copy step
    wal_fast._mirror_lean(archived_a, mirrors)  # A's copy step, after B's cleanup
    records = sorted(p.name for p in (backup / "mirrors").rglob("*") if p.is_file())
    copies = sorted(p.name for p in mirror.rglob(f"{seg.name}-*"))
    assert copies == [archived_a.name] or records == [archived_a.name], (copies, records)
