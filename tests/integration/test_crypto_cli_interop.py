"""The disaster-recovery promise for passphrase backups, against the real `age` CLI.

`age -p` and `age -d` read a passphrase from the terminal only, never from
argv or a pipe, so each run gets a pseudo-terminal as its controlling tty and
the test types the passphrase into it (which also keeps it out of argv).
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import shutil
import subprocess
import termios
import time
from pathlib import Path

import pytest

from seawall.pipeline.age_scrypt import (
    CHUNK_SIZE,
    AgeFormatError,
    WrongPassphraseError,
    decrypt_passphrase_io,
    encrypt_passphrase_io,
    is_scrypt_header,
)

AGE = shutil.which("age")
pytestmark = pytest.mark.skipif(AGE is None, reason="the age CLI (Debian package age) is needed")

PW = "tty typed passphrase ✓ 42"
_PROMPT = re.compile(rb"passphrase[^:\n]*: ")


def _make_ctty() -> None:
    # Runs in the child after setsid() and the dup2 of the pty slave onto
    # 0/1/2: make the slave the controlling terminal so /dev/tty works.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _age_with_tty(args: list[str], passphrase: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run `age ARGS` on a fresh pty, answering every passphrase prompt.

    Returns the exit code and what age printed on the terminal.
    """
    assert AGE is not None
    master, slave = os.openpty()
    # No echo from the start: we may type before age switches echo off itself.
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen(
        [AGE, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_make_ctty,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"age did not finish; terminal so far: {seen!r}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    block = os.read(master, 4096)
                except OSError:  # EIO: every slave fd closed, age exited
                    block = b""
                if not block:
                    break
                seen += block
                prompts = len(_PROMPT.findall(seen))
                while answered < prompts:
                    os.write(master, passphrase.encode() + b"\n")
                    answered += 1
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, seen.decode(errors="replace")


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * 1024 * 1024 + 5])
def test_ours_decrypts_with_age_cli(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    enc = tmp_path / "backup.age"
    with enc.open("wb") as f:
        encrypt_passphrase_io(io.BytesIO(data), f, PW, work_factor=10)
    out = tmp_path / "plain"
    code, term = _age_with_tty(["-d", "-o", str(out), str(enc)], PW)
    assert code == 0, term
    # age opens -o lazily: an empty plaintext leaves no output file at all.
    got = out.read_bytes() if out.exists() else b""
    assert got == data
    assert PW not in term


def test_default_work_factor_decrypts_with_age_cli(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    enc = tmp_path / "backup.age"
    with enc.open("wb") as f:
        encrypt_passphrase_io(io.BytesIO(data), f, PW)
    out = tmp_path / "plain"
    code, term = _age_with_tty(["-d", "-o", str(out), str(enc)], PW)
    assert code == 0, term
    assert out.read_bytes() == data


def test_age_cli_rejects_our_file_under_wrong_passphrase(tmp_path: Path) -> None:
    """Guards the helper itself: a wrong typed passphrase must make age fail."""
    enc = tmp_path / "backup.age"
    with enc.open("wb") as f:
        encrypt_passphrase_io(io.BytesIO(b"data"), f, PW, work_factor=10)
    out = tmp_path / "plain"
    code, term = _age_with_tty(["-d", "-o", str(out), str(enc)], PW + "x")
    assert code != 0
    assert "incorrect passphrase" in term.lower() or "no identity matched" in term.lower(), term


def _age_encrypt(tmp_path: Path, data: bytes) -> bytes:
    src = tmp_path / "plain"
    src.write_bytes(data)
    enc = tmp_path / "backup.age"
    code, term = _age_with_tty(["-p", "-o", str(enc), str(src)], PW)
    assert code == 0, term
    assert term.count("assphrase") >= 2, term  # asked, then confirmed
    return enc.read_bytes()


@pytest.mark.parametrize("size", [0, 2 * CHUNK_SIZE, 3 * 1024 * 1024 + 5])
def test_age_cli_encrypts_ours_decrypts(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    blob = _age_encrypt(tmp_path, data)
    assert is_scrypt_header(blob[:32])
    out = io.BytesIO()
    decrypt_passphrase_io(io.BytesIO(blob), out, PW)
    assert out.getvalue() == data


def test_age_cli_file_wrong_passphrase_and_truncation(tmp_path: Path) -> None:
    blob = _age_encrypt(tmp_path, os.urandom(CHUNK_SIZE + 10))
    with pytest.raises(WrongPassphraseError):
        decrypt_passphrase_io(io.BytesIO(blob), io.BytesIO(), PW + "x")
    with pytest.raises(AgeFormatError, match="truncated"):
        decrypt_passphrase_io(io.BytesIO(blob[:-1]), io.BytesIO(), PW)
