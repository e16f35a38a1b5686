"""The console entry ends the process without interpreter teardown, but
only once what an orderly exit does is done: atexit handlers have run,
stdout/stderr are flushed, no non-daemon thread is left to wait for."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exit_code_output_and_atexit_handlers_survive(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    res = _run(
        f"""
        import atexit, logging, sys
        from seawall.entry import _exit_now
        logging.basicConfig(filename={str(tmp_path / "log")!r}, level=logging.INFO)
        logging.getLogger("t").info("last line")
        atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
        sys.stdout.write("unflushed stdout")
        sys.stderr.write("unflushed stderr")
        _exit_now(3)
        print("not reached")
        """
    )
    assert res.returncode == 3, res.stderr
    assert res.stdout == "unflushed stdout"
    assert res.stderr == "unflushed stderr"
    assert marker.read_text() == "ran"
    assert "last line" in (tmp_path / "log").read_text()  # logging's atexit flush/close


def test_a_live_non_daemon_thread_gets_the_normal_exit(tmp_path: Path) -> None:
    res = _run(
        """
        import sys, threading, time
        from seawall.entry import _exit_now
        t = threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished")))
        t.start()
        assert _exit_now(4) is None
        print("returned")
        sys.exit(5)
        """
    )
    assert res.returncode == 5, res.stderr
    assert res.stdout.split("\n")[:2] == ["returned", "thread finished"]


def test_output_that_cannot_be_written_is_exit_120() -> None:
    """stdout whose reader is gone (EPIPE at the final flush; a full disk
    behaves the same): as the interpreter itself would, success becomes 120
    instead of silently lost output."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader at all, before the child even starts
    try:
        res = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom seawall.entry import _exit_now\n"
             "sys.stdout.write('lost')\n_exit_now(0)"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert res.returncode == 120, res.stderr


def test_main_with_an_argv_list_returns_instead_of_exiting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Callers that pass argv (tests, the WAL probe) keep their process."""
    from seawall.entry import main

    assert main(["--version"]) == 0
    assert "seawall" in capsys.readouterr().out
