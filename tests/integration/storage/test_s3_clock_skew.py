"""Lease expiry is judged by the server's clock, not the local one (ADR 0012).

A lock or hold object on S3 counts while ``LastModified + lease`` is ahead
of *now*; ``LastModified`` is stamped by the server, so *now* must be the
server's too. A host whose clock runs 8 minutes fast (NTP broken, a VM
resumed) used to see every live lock and hold as expired — prune would then
delete a backup a restore is reading — and one running slow would see dead
ones as held. The process with the wrong clock is a real one under
``faketime`` (the whole process: libfaketime), against a real SeaweedFS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.catalog.locks import backup_hold, series_lock
from seawall.storage.factory import open_repository, open_storage
from tests.integration.storage.test_s3_full_cycle import aws_env
from tests.support.s3server import S3Server

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime not installed")

#: the lease is 300 s (+60 s margin): a skew beyond that, within SigV4's 15 minutes
SKEW = "+480s"

PROBE = """
import json, sys
from seawall.catalog.locks import is_backup_held, is_series_locked, list_locks
from seawall.storage.factory import open_repository
repo = open_repository(sys.argv[1], sys.argv[2:])
print(json.dumps({
    "series": is_series_locked(repo, "postgresql", "logical", "app"),
    "hold": is_backup_held(repo, "postgresql", "logical", "app", "b1"),
    "listed": [lock.held for lock in list_locks(repo)],
}))
"""


def probe(env: dict[str, str], skew: str, url: str, mirrors: list[str]) -> dict[str, object]:
    res = subprocess.run(
        ["faketime", "-f", skew, sys.executable, "-c", PROBE, url, *mirrors],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    out: dict[str, object] = json.loads(res.stdout.splitlines()[-1])
    return out


@pytest.mark.parametrize("mirrored", [False, True], ids=["s3", "s3-with-mirror"])
def test_a_fast_local_clock_still_sees_live_locks_and_holds(
    tmp_path: Path,
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
    mirrored: bool,
) -> None:
    bucket = bucket_factory(s3_server)
    url = f"s3://{bucket}/repo"
    env = aws_env(s3_server)
    mirrors = [str(tmp_path / "mirror")] if mirrored else []
    repo = open_repository(url, mirrors, env=env)
    with (
        series_lock(repo, "postgresql", "logical", "app", timeout=5, command="backup"),
        backup_hold(repo, "postgresql", "logical", "app", "b1"),
    ):
        right = probe(env, "+0s", url, mirrors)
        assert right == {"series": True, "hold": True, "listed": [True]}
        fast = probe(env, SKEW, url, mirrors)
        assert fast == right, f"a clock {SKEW} fast judged live leases expired: {fast}"
    after = probe(env, SKEW, url, mirrors)
    assert after == {"series": False, "hold": False, "listed": []}
    assert open_storage(url, env=env).local_volume() is None


DOWN_PROBE = """
import sys
from seawall.storage.factory import open_repository
repo = open_repository(sys.argv[1], [sys.argv[2]], mirror_timeout=2)
print(repo._is_down(repo.mirrors[0]))
"""


@pytest.mark.parametrize("skew", ["+120s", "-120s"], ids=["fast", "slow"])
def test_a_mirrors_down_marker_is_aged_by_the_primarys_clock(
    tmp_path: Path, s3_server: S3Server, bucket_factory: Callable[[S3Server], str], skew: str
) -> None:
    """The ``down`` marker (storage/mirror.py) spares other processes the wait for a dead
    mirror for 60 s after a failure. Aged by the local clock against S3's LastModified,
    a host 2 minutes fast saw it as stale and a host 2 minutes slow as from the future:
    both waited for the dead mirror again on every run."""
    from seawall.storage.mirror_layout import down_marker, mirror_id, record

    bucket = bucket_factory(s3_server)
    url = f"s3://{bucket}/repo"
    env = aws_env(s3_server)
    mirror = str(tmp_path / "mirror")
    open_storage(url, env=env).write_bytes(
        down_marker(mirror_id(mirror)), record("", mirror, "refused")
    )
    res = subprocess.run(
        ["faketime", "-f", skew, sys.executable, "-c", DOWN_PROBE, url, mirror],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True"], f"a clock {skew} off ignored a fresh down marker"
