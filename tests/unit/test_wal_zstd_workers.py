"""COMPRESSION_THREADS=0 (auto) on the lean wal-push: two libzstd workers when the
process may use two CPUs, zstd in the compressing thread on one; a set value is kept.

Run in a child whose affinity mask is set for real (``os.sched_setaffinity``), as a
cpuset or ``taskset`` would limit archive_command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import os, sys
os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(",")})
from seawall.postgres.wal.lean import zstd_workers
print(zstd_workers(0), zstd_workers(1), zstd_workers(3))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
def test_auto_is_two_workers_on_two_cpus_and_none_on_one() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    for mask, auto in ((cpus[:1], 0), (cpus[:2], 2)):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, ",".join(map(str, mask))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out == [str(auto), "1", "3"], mask
