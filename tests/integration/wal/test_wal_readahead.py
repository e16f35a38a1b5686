"""wal-fetch's read-ahead: bounded, cleaned up, and never a source of unchecked data.

Real processes throughout: wal-push archives synthetic segments (valid
long page headers), ``seawall postgres wal-fetch`` runs as PostgreSQL would
run it, and the reader it starts is a real detached process that the tests
kill with SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from seawall.postgres.wal.readahead import SPOOL
from tests.integration.wal.test_wal_fast_imports import segment

SEG = 16 << 20


def _name(segno: int) -> str:
    return f"00000001{segno >> 8:08X}{segno & 0xFF:08X}"


def _env(tmp: Path, age_keys: tuple[Path, str], **extra: str) -> dict[str, str]:
    key, public = age_keys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "ENCRYPTION"))}
    env.update(
        BACKUP_DIR=str(tmp / "backups"),
        ENCRYPTION="true",
        ENCRYPTION_RECIPIENTS=public,
        ENCRYPTION_IDENTITY_FILE=str(key),
        SEAWALL_WAL_READ_AHEAD_IDLE="4",
    )
    env.update(extra)
    return env


def _archive(tmp: Path, env: dict[str, str], segnos: range) -> dict[str, bytes]:
    src = tmp / "src"
    src.mkdir(exist_ok=True)
    out = {}
    for n in segnos:
        seg = segment(src, _name(n))
        res = subprocess.run(
            [sys.executable, "-m", "seawall", "postgres", "wal-push", str(seg)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stderr
        out[seg.name] = seg.read_bytes()
        seg.unlink()
    return out


def _fetch(env: dict[str, str], name: str, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seawall", "postgres", "wal-fetch", name, str(dest)],
        env=env,
        capture_output=True,
        text=True,
    )


def _wait(cond: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _spooled(spool: Path) -> list[str]:
    try:
        return sorted(p.name for p in spool.iterdir() if not p.name.startswith("."))
    except FileNotFoundError:
        return []


def test_reads_ahead_bounded_then_cleans_up(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    """k segments ahead at most, fewer when the byte bound is lower; what recovery
    went past is deleted; an idle reader removes everything and exits."""
    env = _env(tmp_path, age_keys, SEAWALL_WAL_READ_AHEAD="3")
    segs = _archive(tmp_path, env, range(3, 12))
    names = sorted(segs)
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    spool = pg_wal / SPOOL
    dest = pg_wal / "RECOVERYXLOG"

    res = _fetch(env, names[0], dest)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == segs[names[0]]
    assert (spool.stat().st_mode & 0o777) == 0o700
    _wait(lambda: len(_spooled(spool)) == 3)
    time.sleep(1.0)  # it stays at 3: bounded by WAL_READ_AHEAD
    assert [s[:24] for s in _spooled(spool)] == names[1:4]
    # every spooled file is the archived content of the name it carries
    for entry in _spooled(spool):
        data = (spool / entry).read_bytes()
        assert data == segs[entry[:24]]
        assert hashlib.sha256(data).hexdigest()[:40] == entry[25:]

    # recovery jumps ahead (e.g. a later segment requested): the past is deleted
    res = _fetch(env, names[5], dest)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == segs[names[5]]
    _wait(lambda: [s[:24] for s in _spooled(spool)] == names[6:9])

    # the next one is taken from the spool (a rename: the spooled file is gone)
    taken = _spooled(spool)[0]
    ino = (spool / taken).stat().st_ino
    res = _fetch(env, names[6], dest)
    assert res.returncode == 0, res.stderr
    assert dest.stat().st_ino == ino and dest.read_bytes() == segs[names[6]]

    # nobody asks for WAL_READ_AHEAD_IDLE (4 s): everything goes, directory included
    _wait(lambda: not spool.exists(), timeout=60)
    assert sorted(p.name for p in pg_wal.iterdir()) == ["RECOVERYXLOG"]


def test_byte_bound(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    env = _env(tmp_path, age_keys, SEAWALL_WAL_READ_AHEAD="8", SEAWALL_WAL_READ_AHEAD_MAX_MB="40")
    segs = _archive(tmp_path, env, range(3, 9))
    names = sorted(segs)
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    spool = pg_wal / SPOOL
    assert _fetch(env, names[0], pg_wal / "RECOVERYXLOG").returncode == 0
    _wait(lambda: len(_spooled(spool)) == 2)  # 40 MiB: two 16 MiB segments
    time.sleep(1.5)
    assert len(_spooled(spool)) == 2
    assert sum((spool / s).stat().st_size for s in _spooled(spool)) <= 40 << 20


def test_kill_9_leaves_nothing_postgres_could_take(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """A reader killed mid-decode leaves a dot-named temporary at most, and wal-fetch
    takes nothing from a spool whose reader is gone: not even a file named like a
    checked segment (planted here with the wrong content)."""
    env = _env(tmp_path, age_keys, SEAWALL_WAL_READ_AHEAD="4")
    segs = _archive(tmp_path, env, range(3, 9))
    names = sorted(segs)
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    spool = pg_wal / SPOOL
    dest = pg_wal / "RECOVERYXLOG"
    assert _fetch(env, names[0], dest).returncode == 0

    partial: list[Path] = []

    def mid_decode() -> bool:
        partial[:] = [p for p in spool.iterdir() if ".seawall-" in p.name and p.name != ".lock"]
        return bool(partial)

    _wait(mid_decode)
    pid = int(partial[0].name.rsplit("-", 1)[1])
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: not Path(f"/proc/{pid}").exists() or "Z" in _state(pid))
    # only checked files carry a segment's name; the temporary is a dot name
    for entry in _spooled(spool):
        assert hashlib.sha256((spool / entry).read_bytes()).hexdigest()[:40] == entry[25:]
    # plant a file under the name wal-fetch would take for the next segment
    (stored,) = (tmp_path / "backups").rglob(f"{names[1]}-*")
    planted = spool / stored.name[:65]
    planted.unlink(missing_ok=True)
    planted.write_bytes(b"\0" * SEG)
    planted.chmod(0o600)
    res = _fetch(env, names[1], dest)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == segs[names[1]]  # decoded from the archive, not taken
    assert not planted.exists()  # the dead reader's spool was emptied
    assert not any(".seawall-" in p.name for p in spool.iterdir() if p.name != ".lock")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "gone"


def test_corrupt_segment_is_not_spooled_and_stops_loudly(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    env = _env(tmp_path, age_keys, SEAWALL_WAL_READ_AHEAD="4")
    segs = _archive(tmp_path, env, range(3, 9))
    names = sorted(segs)
    (stored,) = (tmp_path / "backups").rglob(f"{names[2]}-*")
    blob = bytearray(stored.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    stored.write_bytes(bytes(blob))
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    spool = pg_wal / SPOOL
    dest = pg_wal / "RECOVERYXLOG"
    assert _fetch(env, names[0], dest).returncode == 0
    _wait(lambda: names[4] in [s[:24] for s in _spooled(spool)])
    assert names[2] not in [s[:24] for s in _spooled(spool)]
    assert _fetch(env, names[1], dest).returncode == 0
    dest.unlink()
    res = _fetch(env, names[2], dest)
    assert res.returncode not in (0, 1) and "corrupt" in res.stderr, res.stderr
    assert not dest.exists()


def test_standby_ahead_of_the_archive(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    """The next segments are not archived yet (a standby that replayed everything):
    wal-fetch of them exits 1 quietly; the reader spools each one as it arrives,
    and leaves nothing behind once nobody asks."""
    env = _env(tmp_path, age_keys, SEAWALL_WAL_READ_AHEAD="4", SEAWALL_WAL_READ_AHEAD_IDLE="6")
    segs = _archive(tmp_path, env, range(3, 5))
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    spool = pg_wal / SPOOL
    dest = pg_wal / "RECOVERYXLOG"
    assert _fetch(env, _name(4), dest).returncode == 0
    res = _fetch(env, _name(5), dest)
    assert (res.returncode, res.stderr) == (1, "")
    time.sleep(1.5)
    assert _spooled(spool) == []
    segs |= _archive(tmp_path, env, range(5, 7))  # archived while the standby waits
    _wait(lambda: [s[:24] for s in _spooled(spool)] == [_name(5), _name(6)], timeout=30)
    ino = (spool / _spooled(spool)[0]).stat().st_ino
    assert _fetch(env, _name(5), dest).returncode == 0
    assert dest.stat().st_ino == ino and dest.read_bytes() == segs[_name(5)]
    _wait(lambda: not spool.exists(), timeout=60)


def test_waits_for_the_segment_the_reader_is_decoding(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """wal-fetch of a segment the reader is writing waits for its name (no second
    decode on the other core), and decodes it itself if the reader gives up on it."""
    import fcntl

    env = _env(tmp_path, age_keys, SEAWALL_WAL_READ_AHEAD="4")
    segs = _archive(tmp_path, env, range(3, 5))
    pg_wal = tmp_path / "pg_wal"
    spool = pg_wal / SPOOL
    spool.mkdir(parents=True, mode=0o700)
    dest = pg_wal / "RECOVERYXLOG"
    # this test is the reader: it holds the lock and writes the temporaries
    lock = os.open(spool / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        for name, finish in ((_name(3), True), (_name(4), False)):
            tmp = spool / f".{name}.seawall-12345"
            tmp.write_bytes(segs[name][: 1 << 20])
            proc = subprocess.Popen(
                [sys.executable, "-m", "seawall", "postgres", "wal-fetch", name, str(dest)],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(1.0)
            assert proc.poll() is None  # waiting for the reader
            sha = hashlib.sha256(segs[name]).hexdigest()[:40]
            if finish:
                tmp.write_bytes(segs[name])
                tmp.rename(spool / f"{name}-{sha}")
                ino = (spool / f"{name}-{sha}").stat().st_ino
            else:
                tmp.unlink()  # the reader could not decode it
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
            assert dest.read_bytes() == segs[name]
            assert (dest.stat().st_ino == ino) is finish
    finally:
        os.close(lock)
