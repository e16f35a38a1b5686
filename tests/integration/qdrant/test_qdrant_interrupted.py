"""A backup killed (SIGKILL) while Qdrant creates its snapshot.

Qdrant finishes the snapshot after its client is gone, and a killed process
runs no cleanup: the copy stayed on the server for good, one more per
interrupted run (an OOM kill, a Job deadline, an evicted pod) until Qdrant's
disk was full. The next backup of the collection now deletes it, and leaves
snapshots an operator made alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from seawall.app.backup import qdrant_backup as backup
from tests.conftest import SEAWALL
from tests.qdrant_server import QdrantTestServer

from .conftest import MakeCtx


def _wait(what: str, cond: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_next_backup_deletes_the_snapshot_a_killed_backup_left_behind(
    qdrant_server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path
) -> None:
    qdrant_server.create_collection("c", 8, points=50, seed=1)
    # an operator's own snapshot, taken before: not seawall's to delete
    own = httpx.post(f"{qdrant_server.url}/collections/c/snapshots?wait=true", timeout=60)
    own.raise_for_status()
    own_name = own.json()["result"]["name"]

    qdrant_server.faults.slow_create(3.0)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BACKUP_DIR": str(qdir),
        "QDRANT_URL": qdrant_server.url,
        "PRUNE_AFTER_BACKUP": "false",
    }
    proc = subprocess.Popen(
        [SEAWALL, "qdrant", "backup", "c"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait("the snapshot create call", lambda: qdrant_server.faults.fired["slow_create"] >= 1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Qdrant finishes the snapshot although its client is gone
    _wait("the orphaned snapshot", lambda: len(qdrant_server.all_snapshots()) == 2)

    ctx = make_ctx(qdrant_server)
    run = backup(ctx, ["c"])
    run.raise_for_status()
    assert [s.name for s in qdrant_server.all_snapshots()] == [own_name]
    # and the next run after a clean one has nothing to delete, nor a record to read
    assert not list((qdir / ".locks" / "qdrant-snapshots").glob("*"))
    backup(ctx, ["c"]).raise_for_status()
    assert [s.name for s in qdrant_server.all_snapshots()] == [own_name]


def test_the_scratch_space_of_a_killed_deep_verify_is_removed_by_the_next(
    qdrant_server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path, tmp_path: Path
) -> None:
    """`verify --deep` unpacks about the snapshot's size into TMPDIR; killed, it stayed."""
    qdrant_server.create_collection("d", 8, points=300, seed=2)
    ctx = make_ctx(qdrant_server)
    backup(ctx, ["d"]).raise_for_status()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BACKUP_DIR": str(qdir),
        "QDRANT_URL": qdrant_server.url,
        "TMPDIR": str(scratch),
    }
    # an unrelated directory of the same look, held by a live process: never touched
    alive = scratch / f"seawall-deep-{os.uname().nodename}-{os.getpid()}-keep"
    alive.mkdir()

    def deep_dirs() -> list[Path]:
        return [p for p in scratch.iterdir() if p.name.startswith("seawall-") and p != alive]

    proc = subprocess.Popen(
        [SEAWALL, "qdrant", "verify", "latest", "--collection", "d", "--deep"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(
            "the deep check's scratch directory",
            lambda: any(deep_dirs()) or proc.poll() is not None,
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    left = deep_dirs()
    assert left, "the kill came too late to leave anything (nothing to test)"

    res = subprocess.run(
        [SEAWALL, "qdrant", "verify", "latest", "--collection", "d", "--deep"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert deep_dirs() == [], [p.name for p in deep_dirs()]
    assert alive.exists()
