"""An internal error prints one line, and its traceback under LOG_LEVEL=debug
(issue 11 item 9: the message promised a traceback that never came)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent(
    """
    import sys, typer
    from seawall.runner.common import command, settings

    @command
    def broken(configure: bool) -> None:
        if configure:
            settings()
        int("not a number")  # a bug: nothing maps ValueError to a SeawallError

    try:
        broken(sys.argv[1] == "configured")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    """
)


def _run(when: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "LOG_"))}
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, when],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("when", ["configured", "before-settings"])
def test_debug_prints_the_traceback(fmt: str, when: str) -> None:
    res = _run(when, LOG_LEVEL="debug", LOG_FORMAT=fmt, BACKUP_DIR="/nonexistent-seawall")
    assert res.returncode == 1, res.stderr
    assert "internal error: ValueError" in res.stderr
    assert "Traceback (most recent call last)" in res.stderr.replace("\\n", "\n"), res.stderr
    assert ", in broken" in res.stderr, res.stderr  # the frame that raised


@pytest.mark.parametrize("when", ["configured", "before-settings"])
def test_without_debug_one_line(when: str) -> None:
    res = _run(when, LOG_FORMAT="text", BACKUP_DIR="/nonexistent-seawall")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert [ln for ln in res.stderr.splitlines() if ln.strip()] == [
        ln for ln in res.stderr.splitlines() if "internal error: ValueError" in ln
    ]
