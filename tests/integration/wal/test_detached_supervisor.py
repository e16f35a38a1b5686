"""The supervisor every detached WAL daemon runs under (postgres/wal/detached.py, ADR 0018).

A subreaper stands in for a container's PID 1 (``prctl(PR_SET_CHILD_SUBREAPER)``:
the orphans of its descendants become its children, as they would be PID 1's)
and reports how each process it reaps ended. Whatever becomes of the daemon
(kill -9, SIGTERM), what the stand-in reaps must end with exit 0, never by a
signal: a postmaster that is PID 1 takes that for a crashed backend
(test_wal_daemon_pid1.py shows it with a real PostgreSQL).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.postgres.wal.detached import HELD_OFF, SUPERVISOR
from tests.conftest import ROOT
from tests.integration.wal.asynchelpers import wait_for

#: the stand-in PID 1: start the daemon as wal-push does, then reap every orphan
HARNESS = r"""
import ctypes, json, os, sys
assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
from seawall.postgres.wal.detached import spawn_detached
spawn_detached("tests.support.sleeper", sys.argv[1])
while True:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    print(json.dumps({"pid": pid, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                      "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
"""


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _mask(bits: str) -> set[int]:
    value = int(bits.strip(), 16)
    return {n for n in range(1, 65) if value & (1 << (n - 1))}


def test_held_off_are_the_signal_numbers() -> None:
    assert HELD_OFF == (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_what_pid1_reaps_ends_with_0_whatever_ends_the_daemon(
    tmp_path: Path, sig: signal.Signals
) -> None:
    pidfile = tmp_path / "pid"
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(pidfile)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(pidfile.exists, 60, "the daemon to start")
        daemon = int(pidfile.read_text())
        supervisor = int(_status(daemon)["PPid"])
        assert supervisor != harness.pid
        cmdline = Path(f"/proc/{supervisor}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [b"-m", SUPERVISOR.encode()]
        assert cmdline[3] == f"tests.support.sleeper:{pidfile}".encode()
        # the supervisor ignores the polite signals; the daemon has them at their defaults
        held = set(HELD_OFF)
        assert held <= _mask(_status(supervisor)["SigIgn"])
        assert not held & _mask(_status(daemon)["SigIgn"])
        assert not held & _mask(_status(daemon)["SigBlk"])
        assert os.getsid(supervisor) == supervisor and os.getsid(daemon) == supervisor
        for polite in HELD_OFF:
            os.kill(supervisor, polite)
        os.kill(daemon, sig)
        out, err = harness.communicate(timeout=60)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    assert harness.returncode == 0, err
    reaped = [json.loads(line) for line in out.splitlines()]
    # the stand-in reaps only the supervisor, and it ended with 0
    assert reaped == [{"pid": supervisor, "signal": 0, "code": 0}], reaped


def test_a_supervisor_whose_daemon_cannot_start_ends_with_0(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", SUPERVISOR, f"no.such.module:{tmp_path}"],
        cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0
    res = subprocess.run([sys.executable, "-m", SUPERVISOR], capture_output=True, timeout=60)
    assert res.returncode == 0
