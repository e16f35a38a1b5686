"""pitr-restore's WAL prefetch: faster replay without weakening wal-fetch's checks.

The prefetcher decodes the next segments into a spool the restore_command
wrapper takes them from. What must hold: it stays a bounded number of
segments ahead of what recovery asked for, drops what recovery went past,
never spools a segment wal-fetch would refuse (so a corrupt segment still
stops recovery loudly instead of ending it early), hands the server files
it can read, and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path

from seawall.pipeline.keys import KeyRing
from seawall.postgres.physical.prefetch import REQUESTED, Prefetcher
from seawall.postgres.wal.envconfig import load_wal_config
from seawall.postgres.wal.push import push_wal
from tests.integration.wal.helpers import Archived, Restored, make_archived, pitr
from tests.support.pgcluster import PgCluster

SEG = 16 << 20


def _segment(directory: Path, segno: int) -> Path:
    """A synthetic segment with a valid long page header (system id 42)."""
    name = f"00000001{segno >> 8:08X}{segno & 0xFF:08X}"
    head = struct.pack("<HHIQI", 0xD110, 0x0002, 1, segno * SEG, 0) + b"\0" * 4
    head += struct.pack("<QII", 42, SEG, 8192)
    body = os.urandom(4096) + segno.to_bytes(4, "big")
    path = directory / name
    path.write_bytes(head + body + b"\0" * (SEG - len(head) - len(body)))
    return path


def _wait(cond: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _spooled(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir() if not p.name.startswith("."))


def test_prefetcher_stays_ahead_drops_the_past_and_skips_corrupt(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    backup = tmp_path / "backups"
    cfg = load_wal_config(
        {
            "BACKUP_DIR": str(backup),
            "ENCRYPTION": "true",
            "ENCRYPTION_RECIPIENTS": public,
            "ENCRYPTION_IDENTITY_FILE": str(key),
        }
    )
    src = tmp_path / "src"
    src.mkdir()
    segs = [_segment(src, n) for n in range(3, 13)]
    for seg in segs:
        push_wal(cfg, seg)
    names = [s.name for s in segs]
    # corrupt the archived copy of the 3rd segment
    (stored,) = (backup / "postgresql" / "wal").rglob(f"{names[2]}-*")
    blob = bytearray(stored.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    stored.write_bytes(bytes(blob))

    spool = tmp_path / "spool"
    spool.mkdir()
    pf = Prefetcher(
        backup_dir=backup,
        cluster="main",
        keys=KeyRing.build(identity=key.read_text()),
        names=names,
        spool=spool,
        owner=None,
        ahead=2,
    )
    pf.start()
    try:
        # nothing requested yet: the first ahead+1 segments and no more,
        # except the corrupt one, which is left to wal-fetch
        _wait(lambda: _spooled(spool) == names[:2] and pf.stats.failed == 1)
        time.sleep(0.3)
        assert _spooled(spool) == names[:2]
        # byte-identical to what was archived
        assert (spool / names[0]).read_bytes() == segs[0].read_bytes()

        # recovery takes segment 0 and asks for 1, as the wrapper does
        os.rename(spool / names[0], tmp_path / "taken")
        (spool / REQUESTED).write_text(names[1] + "\n")
        _wait(lambda: _spooled(spool) == [names[1], names[3]])

        # recovery jumps to 5 (as if 1..4 came from elsewhere): the past is dropped
        (spool / REQUESTED).write_text(names[5] + "\n")
        _wait(lambda: _spooled(spool) == names[5:8])
    finally:
        stats = pf.stop()
    assert stats.failed == 1
    assert stats.used == 1  # only names[0] was taken
    assert stats.discarded == stats.spooled - 1
    assert not spool.exists()
    assert (tmp_path / "taken").read_bytes() == segs[0].read_bytes()


def test_a_swapped_spool_does_not_redirect_the_writes(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """The spool belongs to the server's user and the prefetcher may run as
    root: replacing the spool path with a symlink elsewhere must not make the
    prefetcher write, rename or delete anything there."""
    key, public = age_keys
    backup = tmp_path / "backups"
    cfg = load_wal_config(
        {"BACKUP_DIR": str(backup), "ENCRYPTION": "true", "ENCRYPTION_RECIPIENTS": public}
    )
    src = tmp_path / "src"
    src.mkdir()
    segs = [_segment(src, n) for n in range(3, 6)]
    for seg in segs:
        push_wal(cfg, seg)
    spool = tmp_path / "spool"
    spool.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep me")
    pf = Prefetcher(
        backup_dir=backup,
        cluster="main",
        keys=KeyRing.build(identity=key.read_text()),
        names=[s.name for s in segs],
        spool=spool,
        owner=None,
        ahead=8,
    )
    moved = tmp_path / "moved-spool"
    spool.rename(moved)  # the "attacker" swaps the path before the thread writes
    spool.symlink_to(elsewhere)
    pf.start()
    try:
        _wait(lambda: pf.stats.spooled + pf.stats.failed == len(segs))
    finally:
        stats = pf.stop()
    assert stats.spooled == len(segs)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["precious"]
    assert (elsewhere / "precious").read_text() == "keep me"
    assert spool.is_symlink()  # not followed, not removed


def _base_then_batches(arch: Archived, n: int) -> list[str]:
    """A base backup of table t, then ``n`` batches of 1000 rows, each in its own
    archived segment; returns those segments' names."""
    arch.pg.psql("CREATE TABLE t (batch int, i int)")
    arch.basebackup()
    segs = []
    for batch in range(1, n + 1):
        arch.pg.psql(f"INSERT INTO t SELECT {batch}, g FROM generate_series(1, 1000) g")
        segs.append(arch.switch_and_wait())
    return segs


def _prefetch_line(stderr: str) -> tuple[int, int]:
    m = re.search(r"(\d+) of (\d+) planned segments served from the spool", stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2))


def test_pitr_restore_replays_from_the_spool(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    _base_then_batches(arch, 6)
    r, res = pitr(arch, "--latest")
    restores.append(r)
    assert json.loads(res.stdout)["state"] == "promoted"
    assert r.psql("SELECT count(*), count(DISTINCT batch) FROM t") == "6000|6"
    used, planned = _prefetch_line(res.stderr)
    # the segments came from the spool (normally all of them; a loaded machine
    # may let recovery ask for one before it is ready: wal-fetch serves it)
    assert planned >= 7 and used >= planned - 2, res.stderr
    assert not (r.base / ".data.seawall-recovery" / "prefetch").exists()
    # the server can keep working on the files it got (owned by postgres)
    r.psql("INSERT INTO t VALUES (7, 1); CHECKPOINT")


def test_corrupt_segment_still_stops_recovery_loudly(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    segs = _base_then_batches(arch, 4)
    (stored,) = (backup_dir / "postgresql" / "wal").rglob(f"{segs[1]}-*")
    blob = bytearray(stored.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    stored.write_bytes(bytes(blob))

    r, res = pitr(arch, "--latest", expect_ok=False)
    restores.append(r)
    # not "promoted" at an earlier point: PostgreSQL was stopped, and says why
    assert res.returncode == 9, res.stdout + res.stderr
    assert "PostgreSQL stopped during recovery" in res.stderr
    assert segs[1] in res.stderr or "126" in res.stderr, res.stderr
    log = (r.base / ".data.seawall-recovery" / "server.log").read_text()
    assert f"wal-fetch {segs[1]} failed" in log
    assert "corrupt" in log or "authentication" in log
