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

The lean push's own threads (postgres/wal/leanstream.py) had the sibling
defect: a Ctrl-C at the wrong bytecode left the main thread waiting on a
lock it held itself, and the push hung forever; the last test sends SIGINT
at random moments of the streaming.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
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


#: SIGINTs sent at random moments of a lean push; before the fix about one push
#: in 5-10 hung for good (a KeyboardInterrupt between taking a lock and noting
#: it: the clean-up waited on a lock the main thread held itself)
INTERRUPTS = 20
PARTIAL = ".partial-"


def test_interrupted_lean_push_never_hangs_or_crashes(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """Ctrl-C anywhere in a lean push: exit 130 (or 0 if it came too late), never a hang
    (the threads' ring deadlocked) or a crash (a thread left inside pyrage at exit)."""
    backup = tmp_path / "b"
    prepare_archive(backup)
    env = env_for(backup, age_keys[1])
    seg = make_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # incompressible: a slower, wider target
    seg.write_bytes(data)
    directory = backup / "postgresql" / "wal" / "main" / "0000000100000000"
    rng = random.Random(1)
    codes = []
    for _ in range(INTERRUPTS):
        for p in directory.iterdir():
            p.unlink()
        proc = subprocess.Popen(
            [sys.executable, "-m", "seawall", "postgres", "wal-push", str(seg)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        # once the push streams (its temporary exists: seawall's handler is in
        # place), at a random moment of the streaming or just after it
        while proc.poll() is None and not any(PARTIAL in p.name for p in directory.iterdir()):
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.15))
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)  # a push takes a second or two
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"wal-push hung after SIGINT (codes so far {codes})")
        codes.append(proc.returncode)
    assert set(codes) <= {0, 130}, codes
