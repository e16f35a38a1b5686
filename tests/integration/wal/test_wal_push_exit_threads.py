"""A refused wal-push ends with its exit code, never with a crash after the message.

``test_wal_push_refusals[empty-lean]`` once died with SIGSEGV after printing
the right refusal. The cause (core dumps: the crashing thread is inside
``PyInit_pyrage`` and "Exiting"): the general path's encoder thread was
still importing pyrage when the refusal ended the process; CPython 3.11
ends such a thread with ``pthread_exit`` when it next wants the GIL, and
the forced unwind through pyrage's Rust frames crashes (SIGSEGV) or aborts
("FATAL: exception not rethrown"). The fix: ``push_wal`` joins its encoder
on every way out and the thread is no daemon.

The crash needs the encoder to be inside pyrage's import at the moment the
interpreter finalizes. A busy machine makes that likely (the full suite:
1 in ~40 runs of the console script under three CPU burners, measured);
here the GIL switch interval is made tiny instead, which interleaves the
two threads as a loaded machine does (about 1 crash in 5 runs before the
fix, measured at load ~10).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from seawall.errors import RefusedError
from seawall.postgres.wal.envconfig import load_wal_config
from seawall.postgres.wal.push import push_wal
from tests.integration.wal.test_wal_lean_push import env_for, make_segment, prepare_archive

#: runs of the console script; before the fix at least one of them crashed in
#: nearly every test run (see the module docstring)
RUNS = 30


def _entry_with_tiny_switch_interval(path: Path) -> str:
    """``seawall postgres wal-push PATH`` as the console script runs it (argv None:
    standalone), with the GIL handed between threads every microsecond."""
    return (
        "import sys; sys.setswitchinterval(1e-6); from seawall.entry import main; "
        f"sys.argv[1:] = ['postgres', 'wal-push', {str(path)!r}]; sys.exit(main())"
    )


def test_refused_push_exits_9_every_time(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    backup = tmp_path / "b"
    prepare_archive(backup)
    env = env_for(backup, age_keys[1])
    bad = tmp_path / "000000010000000000000003"
    bad.write_bytes(b"")  # refused by the general path right after its encoder started
    codes = []
    for _ in range(RUNS):
        res = subprocess.run(
            [sys.executable, "-c", _entry_with_tiny_switch_interval(bad)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert "not a WAL segment" in res.stderr, res.stderr
        codes.append(res.returncode)
    assert codes == [9] * RUNS, f"exit codes {codes} (-11: SIGSEGV, -6: SIGABRT)"


@pytest.mark.parametrize("case", ["foreign-cluster", "not-a-segment"])
def test_refusal_leaves_no_encoder_running(
    case: str, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """The invariant itself, in-process: when push_wal raises, its encoder is gone."""
    backup = tmp_path / "b"
    prepare_archive(backup)
    seg = make_segment(tmp_path, sysid=12345)  # a 16 MiB segment of another cluster
    data = bytearray(seg.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # incompressible: the encoder takes its time
    if case == "not-a-segment":
        data[:2] = b"\0\0"  # no WAL page magic
    seg.write_bytes(data)
    cfg = load_wal_config(env_for(backup, age_keys[1]))
    with pytest.raises(RefusedError):
        push_wal(cfg, seg)
    running = [t.name for t in threading.enumerate() if t.name == "seawall-wal-encode"]
    assert running == []
