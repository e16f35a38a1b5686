"""wal-push into S3 with MIRRORS, SIGKILLed right after its commit: the lag is recorded.

The rule (storage/mirror.py): each mirror's intent record
``mirrors/<id>/pending/<key>`` is written in the primary *before* the
object's commit, so a process killed between the commit and the mirror
copies leaves the record ``seawall sync`` completes the mirror from. The
lean local push always did; the lean S3 push and the general path wrote it
after their commit, and a ``kill -9`` in that window left a segment in the
primary that no record named.

A real SeaweedFS behind a relay (tests/support/holdproxy.py) that lets the
segment's commit through and holds the next request: the push has
committed and done nothing since when it is killed with SIGKILL. On a local
primary the push SIGKILLs itself (an audit hook) at its first step after the
rename that commits the segment.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.storage.mirror_layout import mirror_id, pending_prefix
from tests.conftest import SEAWALL, run_seawall
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.integration.wal.s3helpers import _env, _keys
from tests.integration.wal.test_wal_fast_imports import segment
from tests.support.holdproxy import HoldingProxy
from tests.support.s3server import S3Server

__all__ = ["s3_server"]  # fixture used by name below

NAME = "000000010000000300000041"

#: wal-push in this process, SIGKILLed by itself at the first audited step (the
#: directory fsync's open) after the rename that commits a WAL segment
KILL_AFTER_COMMIT = """
import os, signal, sys
committed = []
def hook(event, args):
    if committed and event != "os.kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if event == "os.rename":
        dst = os.fsdecode(args[1])
        if "/postgresql/wal/" in dst and "/mirrors/" not in dst and "archive.json" not in dst:
            committed.append(dst)
sys.addaudithook(hook)
from seawall.entry import main
main(["postgres", "wal-push", sys.argv[1]])
"""


@pytest.mark.parametrize(
    "extra",
    [{}, {"COMPRESSION": "gzip"}],
    ids=["lean-s3-push", "general-path"],  # gzip: the lean path hands over to push_wal
)
def test_kill_after_the_commit_leaves_the_mirror_record(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str], extra: dict[str, str]
) -> None:
    bucket = new_bucket(s3_server)
    proxy = HoldingProxy(s3_server.ports["s3"])
    mirror = tmp_path / "mirror"
    env = _env(
        s3_server,
        f"s3://{bucket}/repo",
        age_keys[1],
        AWS_ENDPOINT_URL=proxy.endpoint,
        MIRRORS=str(mirror),
        **extra,
    )
    seg = segment(tmp_path, NAME)
    try:
        proxy.arm_after_commit()
        proc = subprocess.Popen(
            [SEAWALL, "postgres", "wal-push", str(seg)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            held = proxy.holding.wait(120)
        finally:
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
        assert held, f"no request after the segment's commit reached the relay: {err}"
        assert proc.returncode == -signal.SIGKILL
        keys = _keys(s3_server, bucket)
        (stored,) = [k for k in keys if f"/{NAME}-" in k and "/mirrors/" not in k]
        assert stored.startswith("repo/postgresql/wal/")
        key = stored.removeprefix("repo/")
        record = f"repo/{pending_prefix(mirror_id(str(mirror)))}/{key}"
        assert record in keys, (
            f"killed after the commit of {key}: no intent record for the mirror ({sorted(keys)})"
        )
    finally:
        proxy.after_commit = False
        proxy.release.set()

    # the record is what sync completes the mirror from
    try:
        res = run_seawall(["sync", "--json"], {**env, "LOG_FORMAT": "text"})
    finally:
        proxy.close()
    assert res.returncode == 0, res.stderr
    assert record not in _keys(s3_server, bucket)
    primary_copy = s3_server.client().get_object(Bucket=bucket, Key=stored)["Body"].read()
    assert (mirror / key).read_bytes() == primary_copy


def test_general_path_killed_after_its_local_commit_leaves_the_mirror_record(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """The general path (gzip) into a local primary with a local mirror: killed right
    after the rename that commits the segment, the mirror's record is already there."""
    from tests.integration.wal.test_wal_lean_push import env_for

    backup, mirror = tmp_path / "b", tmp_path / "mirror"
    env = env_for(backup, age_keys[1], COMPRESSION="gzip", MIRRORS=str(mirror))
    seg = segment(tmp_path, NAME)
    res = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_COMMIT, str(seg)], env=env, capture_output=True, text=True
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    wal = backup / "postgresql" / "wal"
    (stored,) = [p for p in wal.rglob(f"{NAME}-*") if ".partial-" not in p.name]
    key = str(stored.relative_to(backup))
    record = backup / pending_prefix(mirror_id(str(mirror))) / key
    assert record.is_file(), f"killed after the commit of {key}: no intent record for the mirror"
    assert not mirror.exists() or not list(mirror.rglob(f"{NAME}-*"))  # no copy was made
    res = run_seawall(["sync", "--json"], {**env, "LOG_FORMAT": "text"})
    assert res.returncode == 0, res.stderr
    assert not record.exists()
    assert (mirror / key).read_bytes() == stored.read_bytes()
