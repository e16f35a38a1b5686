"""Two ``wal-push`` processes racing on one WAL name (issue 11, item 1).

Real console-script processes, started together: each runs under util-linux
``flock -s GATE`` while the test holds the gate exclusively, and the gate is
opened only once ``/proc/locks`` shows both waiting, so the two pushes start
within the same scheduler tick, round after round. With different content
exactly one may exit 0 and exactly one version may be stored (the other
exits 9, "already archived with different content"); with the same content
both exit 0 and one file is stored. Both paths: the lean one (zstd + age
recipients into an existing archive) and the general one
(``COMPRESSION=none``, which the lean path hands over, ADR 0002).

A kill -9 of a process holding a name's claim must not wedge the name: the
push waiting for it, and any later push, completes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seawall.storage.base import is_partial_name
from seawall.walcore.layout import CLAIM_SUFFIX
from tests.conftest import SEAWALL
from tests.integration.wal.test_wal_lean_push import (
    SEG,
    SYSID,
    archive_dir,
    env_for,
    prepare_archive,
)

ROUNDS_DIFFERENT = 25
ROUNDS_SAME = 8
SUBDIR = "0000000100000000"
#: the general path: the lean one only does zstd (ADR 0002)
PATHS = {"lean": {}, "general": {"COMPRESSION": "none"}}


def _body(seed: int) -> bytes:
    rows = b"".join(b"row %08d seed %d %s\n" % (i, seed, b"y" * (i % 89)) for i in range(4096))
    return (rows * (SEG // len(rows) + 1))[: SEG - 40 - 65536] + os.urandom(65536)


def _segment(path: Path, segno: int, body: bytes) -> bytes:
    import struct

    head = struct.pack("<HHIQI", 0xD110, 0x0002, 1, segno * SEG, 0) + b"\0" * 4
    head += struct.pack("<QII", SYSID, SEG, 8192)
    data = head + body
    path.write_bytes(data)
    return data


def _waiters(gate: Path) -> int:
    """Processes blocked on ``gate``'s flock, from /proc/locks (``->`` lines)."""
    st = os.stat(gate)
    dev = os.major(st.st_dev), os.minor(st.st_dev)
    tag = f"{dev[0]:02x}:{dev[1]:02x}:{st.st_ino} "
    with open("/proc/locks") as fh:
        return sum(1 for line in fh if "->" in line and tag in line)


def _race(
    gate: Path, env: dict[str, str], paths: list[Path]
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``wal-push`` on each path, all released at the same instant."""
    fd = os.open(gate, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        procs = [
            subprocess.Popen(
                ["flock", "-s", str(gate), SEAWALL, "postgres", "wal-push", str(p)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for p in paths
        ]
        deadline = time.monotonic() + 120
        while _waiters(gate) < len(procs):
            assert time.monotonic() < deadline, "the racers never reached the gate"
            assert all(p.poll() is None for p in procs), "a racer ended before the gate"
            time.sleep(0.005)
    finally:
        os.close(fd)  # opens the gate
    results = []
    for proc, path in zip(procs, paths, strict=True):
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess([str(path)], proc.returncode, out, err))
    return results


def _versions(backup: Path, name: str) -> list[str]:
    directory = archive_dir(backup) / SUBDIR
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.name.startswith(name) and not is_partial_name(p.name)
    )


def _leftovers(backup: Path) -> list[str]:
    return sorted(
        p.name for p in (archive_dir(backup) / SUBDIR).iterdir() if is_partial_name(p.name)
    )


@pytest.mark.parametrize("path", sorted(PATHS))
def test_racing_pushes_of_one_name_store_one_version(
    path: str, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    _, public = age_keys
    backup = tmp_path / "b"
    prepare_archive(backup)
    env = env_for(backup, public, **PATHS[path])
    gate = tmp_path / "gate"
    a_dir, b_dir = tmp_path / "a", tmp_path / "b-src"
    a_dir.mkdir()
    b_dir.mkdir()
    body_a, body_b = _body(1), _body(2)
    for rnd in range(ROUNDS_DIFFERENT + ROUNDS_SAME):
        segno = 0x10 + rnd
        name = f"{SUBDIR}{segno:08X}"
        same = rnd >= ROUNDS_DIFFERENT
        data_a = _segment(a_dir / name, segno, body_a)
        data_b = _segment(b_dir / name, segno, body_a if same else body_b)
        results = _race(gate, env, [a_dir / name, b_dir / name])
        versions = _versions(backup, name)
        report = f"round {rnd} ({path}, {'same' if same else 'different'} content): " + "; ".join(
            f"exit {r.returncode} {r.stderr.strip()[:300]}" for r in results
        )
        assert len(versions) == 1, f"{report}; stored {versions}"
        if same:
            assert [r.returncode for r in results] == [0, 0], report
        else:
            codes = sorted(r.returncode for r in results)
            assert codes == [0, 9], report
            loser = next(r for r in results if r.returncode != 0)
            assert "already archived with different content" in loser.stderr, report
            winner = next(r for r in results if r.returncode == 0)
            won = data_a if winner.args == [str(a_dir / name)] else data_b
            assert versions[0].startswith(f"{name}-{hashlib.sha256(won).hexdigest()[:40]}")
        assert _leftovers(backup) == [], report


HOLDER = """
import sys
from seawall.postgres.wal.claim import claim
claim(sys.argv[1], sys.argv[2])
print("held", flush=True)
sys.stdin.read()
"""


def _claim_waiters(claim_file: Path) -> int:
    return _waiters(claim_file) if claim_file.exists() else 0


@pytest.mark.parametrize("path", sorted(PATHS))
def test_kill_9_of_a_claim_holder_does_not_wedge_the_name(
    path: str, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """A push waits while another process holds the name's claim, and
    completes once that process is killed; a claim file left by a kill -9
    is taken over by the next push and removed."""
    _, public = age_keys
    backup = tmp_path / "b"
    prepare_archive(backup)
    env = env_for(backup, public, **PATHS[path])
    directory = archive_dir(backup) / SUBDIR
    name = f"{SUBDIR}00000020"
    seg = tmp_path / name
    data = _segment(seg, 0x20, _body(3))
    claim_file = directory / f"{name}{CLAIM_SUFFIX}"

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        push = subprocess.Popen(
            [SEAWALL, "postgres", "wal-push", str(seg)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while _claim_waiters(claim_file) < 1:  # the push reached the claim and waits
            assert push.poll() is None, push.communicate()
            assert time.monotonic() < deadline, "wal-push never waited for the claim"
            time.sleep(0.01)
        assert _versions(backup, name) == []  # nothing committed behind the holder's back
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        _out, err = push.communicate(timeout=300)
        assert push.returncode == 0, err
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert _versions(backup, name) == [
        f"{name}-{hashlib.sha256(data).hexdigest()[:40]}"
        + (".zst.age" if path == "lean" else ".age")
    ]
    assert not claim_file.exists()

    # killed while holding, nobody waiting: the claim file stays, and is no obstacle
    nxt = f"{SUBDIR}00000021"
    seg2 = tmp_path / nxt
    _segment(seg2, 0x21, _body(4))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), nxt],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    left = directory / f"{nxt}{CLAIM_SUFFIX}"
    assert left.exists()
    res = subprocess.run(
        [SEAWALL, "postgres", "wal-push", str(seg2)], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert len(_versions(backup, nxt)) == 1 and not left.exists()
    assert _leftovers(backup) == []
