"""A mirror's lag in seconds is judged by the primary's clock, not the exporter host's.

``seawall_mirror_lag_seconds`` is the age of the oldest object the primary
holds and the mirror lacks. On object storage that object's mtime is
``LastModified``, stamped by the *server's* clock; comparing it with the
exporter's own clock made a host running 8 minutes fast report 8 minutes of
lag for an object written a moment ago (and alert on it), one running slow
report none. The exporter with the wrong clock is a real process under
``faketime`` (libfaketime), against a real SeaweedFS, as in
tests/integration/storage/test_s3_clock_skew.py.
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

from seawall.storage.factory import open_storage
from tests.integration.storage.conftest import bucket_factory, s3_server
from tests.integration.storage.test_s3_full_cycle import aws_env
from tests.support.s3server import S3Server

__all__ = ["bucket_factory", "s3_server"]  # fixtures used by name below

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime not installed")

#: the exporter host's clock runs this far ahead (within SigV4's 15 minutes)
SKEW = "+480s"

PROBE = """
import json, sys
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.repositories import Repositories
from seawall.storage.factory import open_storage
primary, mirror = sys.argv[1], sys.argv[2]
storage = open_storage(primary)
repos = Repositories.of((primary, storage), [(mirror, open_storage(mirror))], interval=0.0)
reg = make_registry(SeawallCollector(storage, repositories=repos))
label = {"repository": mirror}
print(json.dumps({
    "objects": reg.get_sample_value("seawall_mirror_lag_objects", label),
    "seconds": reg.get_sample_value("seawall_mirror_lag_seconds", label),
}))
"""


def test_a_fast_exporter_clock_does_not_invent_mirror_lag(
    tmp_path: Path, s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    url = f"s3://{bucket}/repo"
    env = aws_env(s3_server)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    # written just now by the server's clock; the (empty) mirror lacks it
    open_storage(url, env=env).write_bytes("postgresql/wal/main/archive.json", b"{}\n")
    res = subprocess.run(
        ["faketime", "-f", SKEW, sys.executable, "-c", PROBE, url, str(mirror)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    lag = json.loads(res.stdout.splitlines()[-1])
    assert lag["objects"] == 1, lag
    # a moment old (a busy machine: tens of seconds at most), not the host's 480 s skew
    assert 0 <= lag["seconds"] < 120, f"a clock {SKEW} fast reported {lag['seconds']:.0f}s of lag"
