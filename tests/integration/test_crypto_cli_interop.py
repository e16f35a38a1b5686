"""The disaster-recovery promise for passphrase backups, against the real `age` CLI.

`age -p` and `age -d` read a passphrase from the terminal only, never from
argv or a pipe, so each run gets a pseudo-terminal as its controlling tty and
the test types the passphrase into it (which also keeps it out of argv).
"""

from __future__ import annotations

import base64
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


# --------------------------------------------------------------------------
# X25519 recipients: our OpenSSL-based writer (age_x25519) against age and pyrage


def _keypair(tmp_path: Path, name: str) -> tuple[Path, str]:
    key = tmp_path / f"{name}.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return key, public


class _Dribble:
    """A reader that returns fewer bytes than asked, in a fixed odd rhythm."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)
        self._sizes = [1, 70_000, 65_536, 3, 1 << 20, 65_535]
        self._i = 0

    def read(self, n: int = -1) -> bytes:
        self._i += 1
        return self._src.read(min(n, self._sizes[self._i % len(self._sizes)]))


@pytest.mark.parametrize(
    "size", [0, 1, 65_535, 65_536, 65_537, 2 * 65_536, (1 << 20) + 1, 3 * (1 << 20) + 65_536]
)
def test_x25519_ours_decrypts_with_age_cli_and_pyrage(tmp_path: Path, size: int) -> None:
    import pyrage
    from pyrage import x25519

    from seawall.pipeline.age_x25519 import encrypt_x25519_io

    key1, pub1 = _keypair(tmp_path, "one")
    key2, pub2 = _keypair(tmp_path, "two")
    data = os.urandom(size)
    out = io.BytesIO()
    encrypt_x25519_io(_Dribble(data), out, [pub1, pub2])
    for key in (key1, key2):  # every recipient can decrypt
        res = subprocess.run(
            ["age", "-d", "-i", str(key)], input=out.getvalue(), capture_output=True
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout == data
    ident = x25519.Identity.from_str(key2.read_text().splitlines()[-1])
    assert pyrage.decrypt(out.getvalue(), [ident]) == data
    # A key that is not a recipient cannot.
    key3, _ = _keypair(tmp_path, "three")
    res = subprocess.run(["age", "-d", "-i", str(key3)], input=out.getvalue(), capture_output=True)
    assert res.returncode != 0 and b"no identity matched" in res.stderr


def test_x25519_flipped_ciphertext_byte_is_refused_by_age_cli(tmp_path: Path) -> None:
    from seawall.pipeline.age_x25519 import encrypt_x25519_io

    key, pub = _keypair(tmp_path, "k")
    out = io.BytesIO()
    encrypt_x25519_io(io.BytesIO(os.urandom(200_000)), out, [pub])
    blob = bytearray(out.getvalue())
    blob[-1000] ^= 0x01
    res = subprocess.run(["age", "-d", "-i", str(key)], input=bytes(blob), capture_output=True)
    assert res.returncode != 0


def test_malformed_recipients_are_refused(tmp_path: Path) -> None:
    from seawall.errors import ConfigError
    from seawall.pipeline.age_x25519 import RecipientError, parse_recipient
    from seawall.pipeline.keys import parse_recipients

    _, pub = _keypair(tmp_path, "k")
    assert len(parse_recipient(pub)) == 32
    assert parse_recipient(pub.upper()) == parse_recipient(pub)
    broken = pub[:-1] + ("q" if pub[-1] != "q" else "p")  # checksum no longer matches
    for bad in (broken, pub[:-3], "age1" + "q" * 58, pub.replace("age1", "agx1")):
        with pytest.raises(RecipientError):
            parse_recipient(bad)
    with pytest.raises(ConfigError, match="not a valid age public key"):
        parse_recipients(broken)


@pytest.mark.parametrize(
    "size", [0, 1, 65_535, 65_536, 65_537, 2 * 65_536, (1 << 20) + 17, 3 * (1 << 20) + 65_536]
)
def test_x25519_age_cli_encrypts_ours_decrypts(tmp_path: Path, size: int) -> None:
    from seawall.pipeline.age_x25519 import decrypt_x25519_io

    _, pub1 = _keypair(tmp_path, "one")
    key2, pub2 = _keypair(tmp_path, "two")
    stranger, _ = _keypair(tmp_path, "stranger")
    data = os.urandom(size)
    blob = subprocess.run(
        ["age", "-r", pub1, "-r", pub2], input=data, check=True, capture_output=True
    ).stdout
    identity = key2.read_text().splitlines()[-1]
    out = io.BytesIO()
    # Several identities (a key rotation): the one that matches is found.
    decrypt_x25519_io(_Dribble(blob), out, [stranger.read_text().splitlines()[-1], identity])
    assert out.getvalue() == data


def test_x25519_decrypt_failures(tmp_path: Path) -> None:
    from seawall.pipeline.age_scrypt import AgeFormatError
    from seawall.pipeline.age_x25519 import NoIdentityMatchedError, decrypt_x25519_io

    key, pub = _keypair(tmp_path, "k")
    other, _ = _keypair(tmp_path, "other")
    identity = key.read_text().splitlines()[-1]
    data = os.urandom(300_000)
    blob = subprocess.run(["age", "-r", pub], input=data, check=True, capture_output=True).stdout

    with pytest.raises(NoIdentityMatchedError):
        decrypt_x25519_io(io.BytesIO(blob), io.BytesIO(), [other.read_text().splitlines()[-1]])
    flipped = bytearray(blob)
    flipped[-70_000] ^= 0x10
    truncated_mid = blob[:-1000]
    truncated_at_chunk = blob[: len(blob) - (len(blob) - 200) % (65_536 + 16)]
    header_end = blob.index(b"\n---") + 1
    header_flip = bytearray(blob)
    header_flip[header_end - 5] ^= 0x01  # inside the stanza body: MAC or key unwrap fails
    for bad in (bytes(flipped), truncated_mid, truncated_at_chunk, blob + b"x" * 100):
        with pytest.raises(AgeFormatError):
            decrypt_x25519_io(io.BytesIO(bad), io.BytesIO(), [identity])
    with pytest.raises((AgeFormatError, NoIdentityMatchedError)):
        decrypt_x25519_io(io.BytesIO(bytes(header_flip)), io.BytesIO(), [identity])


ZERO_KEY_RECIPIENT = "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z"


def test_low_order_points_are_refused(tmp_path: Path) -> None:
    """An all-zero public key (valid Bech32) must not be encrypted to, and a
    file whose X25519 share is a low-order point is corrupt, not a crash."""
    from seawall.errors import ConfigError
    from seawall.pipeline.age_scrypt import AgeFormatError
    from seawall.pipeline.age_x25519 import (
        RecipientError,
        decrypt_x25519_io,
        encrypt_x25519_io,
        parse_recipient,
    )
    from seawall.pipeline.keys import KeyRing
    from seawall.pipeline.store import PipelineSpec, store_stream
    from seawall.storage.local import LocalStorage

    assert parse_recipient(ZERO_KEY_RECIPIENT) == bytes(32)
    with pytest.raises(RecipientError, match="low-order"):
        encrypt_x25519_io(io.BytesIO(b"data"), io.BytesIO(), [ZERO_KEY_RECIPIENT])
    storage = LocalStorage(tmp_path / "store")
    spec = PipelineSpec(compression="none", keys=KeyRing(recipients=(ZERO_KEY_RECIPIENT,)))
    with pytest.raises(ConfigError, match="ENCRYPTION_RECIPIENTS"):
        store_stream(io.BytesIO(b"data"), storage, "a/b.age", spec)
    assert not list((tmp_path / "store").rglob("b.age*"))

    key, pub = _keypair(tmp_path, "k")
    blob = subprocess.run(["age", "-r", pub], input=b"x" * 1000, check=True, capture_output=True)
    lines = blob.stdout.split(b"\n")
    assert lines[1].startswith(b"-> X25519 ")
    lines[1] = b"-> X25519 " + base64.b64encode(bytes(32)).rstrip(b"=")
    with pytest.raises(AgeFormatError, match="low-order"):
        decrypt_x25519_io(
            io.BytesIO(b"\n".join(lines)), io.BytesIO(), [key.read_text().splitlines()[-1]]
        )
