"""The CLI as a user meets it: help, version, keygen with the real age CLI."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import SEAWALL


def test_help_lists_exit_codes() -> None:
    res = subprocess.run([SEAWALL, "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    assert "Exit codes" in res.stdout and "another seawall run" in res.stdout.lower()


def test_python_dash_m_and_version() -> None:
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "seawall", "--version"], capture_output=True, text=True
    )
    assert res.returncode == 0 and res.stdout.startswith("seawall ")


def test_keygen_key_works_with_stock_age(tmp_path: Path) -> None:
    key = tmp_path / "k.txt"
    res = subprocess.run([SEAWALL, "keygen", "-o", str(key)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    public = res.stdout.strip()
    assert public.startswith("age1")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert "AGE-SECRET-KEY" not in res.stdout + res.stderr
    enc = subprocess.run(
        ["age", "-r", public], input=b"hello", capture_output=True, check=True
    ).stdout
    dec = subprocess.run(["age", "-d", "-i", str(key)], input=enc, capture_output=True, check=True)
    assert dec.stdout == b"hello"
    again = subprocess.run([SEAWALL, "keygen", "-o", str(key)], capture_output=True, text=True)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr


def test_invalid_configuration_exits_2_listing_fields(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "DB_", "PG"))}
    env.update(
        BACKUP_DIR=str(tmp_path), COMPRESSION="brotli", DB_PORT="x", DB_PASSWORD="pw-XYZZY-123"
    )
    res = subprocess.run([SEAWALL, "prune", "--dry-run"], env=env, capture_output=True, text=True)
    assert res.returncode == 2
    assert "COMPRESSION" in res.stderr and "DB_PORT" in res.stderr
    assert "pw-XYZZY-123" not in res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
