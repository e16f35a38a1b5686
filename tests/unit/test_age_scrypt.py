"""Streaming age scrypt (passphrase) format: round trips, rage interop, failures.

The interop tests are what make the format claim true: files we write open
with rage (pyrage, an independent implementation) and files rage writes open
here. The CLI (`age`) interop lives in tests/integration.
"""

from __future__ import annotations

import io
import os

import pyrage
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from seawall.pipeline.age_scrypt import (
    CHUNK_SIZE,
    AgeFormatError,
    ScryptDecryptReader,
    ScryptEncryptWriter,
    WrongPassphraseError,
    decrypt_passphrase_io,
    encrypt_passphrase_io,
    is_scrypt_header,
)

PW = "correct horse battery staple ✓"
WF = 10  # low scrypt work factor: tests stay fast, format is identical


def _enc(data: bytes, passphrase: str = PW, work_factor: int = WF) -> bytes:
    out = io.BytesIO()
    encrypt_passphrase_io(io.BytesIO(data), out, passphrase, work_factor)
    return out.getvalue()


def _dec(blob: bytes, passphrase: str = PW, max_work_factor: int = 22) -> bytes:
    out = io.BytesIO()
    decrypt_passphrase_io(io.BytesIO(blob), out, passphrase, max_work_factor)
    return out.getvalue()


class _Trickle(io.RawIOBase):
    """A source that returns at most a few bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._step, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * 1024 * 1024 + 7],
)
def test_round_trip_sizes(size: int) -> None:
    data = os.urandom(size)
    blob = _enc(data)
    assert is_scrypt_header(blob[:32])
    # header + 16-byte nonce + one tag per chunk (an empty file still has one chunk)
    chunks = max(1, -(-size // CHUNK_SIZE))
    header_len = blob.index(b"\n---") + 1 + len(b"--- ") + 43 + 1
    assert len(blob) == header_len + 16 + size + 16 * chunks
    assert _dec(blob) == data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=3 * CHUNK_SIZE + 5),
    writes=st.lists(st.integers(min_value=1, max_value=CHUNK_SIZE + 3), max_size=8),
    read_size=st.integers(min_value=1, max_value=2 * CHUNK_SIZE),
)
def test_round_trip_any_write_and_read_pattern(
    data: bytes, writes: list[int], read_size: int
) -> None:
    """However bytes are split on write and read, the plaintext is the same."""
    out = io.BytesIO()
    w = ScryptEncryptWriter(out, PW, WF)
    pos = 0
    for n in writes:
        w.write(data[pos : pos + n])
        pos += n
    w.write(data[pos:])
    w.close()
    r = ScryptDecryptReader(io.BytesIO(out.getvalue()), PW)
    got = bytearray()
    while block := r.read(read_size):
        assert len(block) <= read_size
        got += block
    assert bytes(got) == data


def test_unbuffered_trickling_source_and_readinto() -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 100)
    blob = _enc(data)
    r = ScryptDecryptReader(_Trickle(blob, 7), PW)
    got = bytearray()
    buf = bytearray(5000)
    while n := r.readinto(buf):
        got += buf[:n]
    assert bytes(got) == data


def test_output_is_randomised() -> None:
    assert _enc(b"same") != _enc(b"same")


def test_default_work_factor_round_trip_with_rage() -> None:
    """The default (18) is what production writes; rage must accept it."""
    out = io.BytesIO()
    encrypt_passphrase_io(io.BytesIO(b"prod"), out, PW)
    assert b"\n-> scrypt " in out.getvalue()
    assert out.getvalue().split(b"\n")[1].endswith(b" 18")
    assert pyrage.passphrase.decrypt(out.getvalue(), PW) == b"prod"
    assert _dec(out.getvalue()) == b"prod"


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 200_000])
def test_ours_decrypts_with_rage(size: int) -> None:
    data = os.urandom(size)
    assert pyrage.passphrase.decrypt(_enc(data), PW) == data


def test_rage_decrypts_with_ours() -> None:
    """rage picks its own work factor (~1 s), so one file covers several chunk cases."""
    data = os.urandom(2 * CHUNK_SIZE)  # exactly-full final chunk
    blob = pyrage.passphrase.encrypt(data, PW)
    assert is_scrypt_header(blob[:32])
    assert _dec(blob) == data


def test_wrong_passphrase() -> None:
    blob = _enc(b"secret data")
    with pytest.raises(WrongPassphraseError) as exc:
        _dec(blob, "wrong " + PW)
    assert PW not in str(exc.value)
    assert "\n" not in str(exc.value)


_FLIP_PLAIN = b"0123456789abcdef" * 5000  # 80 kB: two chunks
_flip_base = _enc(_FLIP_PLAIN)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_fails(data: st.DataObject) -> None:
    """Header, stanza, MAC, nonce, any chunk or tag: every single-bit flip is caught."""
    blob = _flip_base
    pos = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    bad = bytearray(blob)
    bad[pos] ^= 1 << bit
    with pytest.raises((AgeFormatError, WrongPassphraseError)) as exc:
        _dec(bytes(bad))
    assert PW not in str(exc.value)
    assert _dec(blob) == _FLIP_PLAIN


def test_flipped_payload_byte_is_a_format_error() -> None:
    bad = bytearray(_flip_base)
    bad[-100] ^= 0x01
    with pytest.raises(AgeFormatError, match="authentication failed"):
        _dec(bytes(bad))
    bad = bytearray(_flip_base)
    bad[_flip_base.index(b"\n---") + 2] ^= 0x20  # inside the "---" MACed line
    with pytest.raises(AgeFormatError):
        _dec(bytes(bad))


def test_tampered_header_mac_is_detected() -> None:
    at = _flip_base.index(b"\n--- ") + 5 + 10  # a middle character of the MAC
    bad = bytearray(_flip_base)
    bad[at] = ord("A") if bad[at] != ord("A") else ord("B")
    with pytest.raises(AgeFormatError, match="MAC mismatch"):
        _dec(bytes(bad))


def test_buffered_wrapper_and_chained_stages() -> None:
    """The reader is a RawIOBase: io.BufferedReader and line iteration work on it."""
    text = b"".join(b"line %d\n" % i for i in range(20_000))
    inner = ScryptDecryptReader(io.BytesIO(_enc(text)), PW)
    with io.BufferedReader(inner, buffer_size=1000) as buffered:
        lines = list(buffered)
    assert lines[0] == b"line 0\n"
    assert b"".join(lines) == text
    assert inner.closed


@pytest.mark.parametrize("size", [1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE])
def test_truncation_is_detected(size: int) -> None:
    blob = _enc(os.urandom(size))
    body_start = len(blob) - size - 16 * max(1, -(-size // CHUNK_SIZE))
    cuts = {len(blob) - 1, len(blob) - 17, body_start, body_start - 5, 10}
    if size > CHUNK_SIZE:
        cuts.add(body_start + CHUNK_SIZE + 16)  # exactly at a chunk boundary
    for cut in cuts:
        with pytest.raises(AgeFormatError):
            _dec(blob[:cut])


def test_truncation_at_chunk_boundary_names_the_missing_final_chunk() -> None:
    size = 2 * CHUNK_SIZE + 10
    blob = _enc(os.urandom(size))
    cut = len(blob) - (10 + 16)
    with pytest.raises(AgeFormatError, match="final chunk is missing"):
        _dec(blob[:cut])


def test_trailing_garbage_is_rejected() -> None:
    blob = _enc(os.urandom(CHUNK_SIZE))
    with pytest.raises(AgeFormatError, match="trailing data"):
        _dec(blob + b"x")


def test_work_factor_cap() -> None:
    blob = _enc(b"x", work_factor=12)
    with pytest.raises(AgeFormatError, match="exceeds the maximum 11"):
        _dec(blob, max_work_factor=11)
    assert _dec(blob, max_work_factor=12) == b"x"


def _replace_header_line(blob: bytes, index: int, new: bytes) -> bytes:
    lines = blob.split(b"\n")
    lines[index] = new
    return b"\n".join(lines)


def test_scrypt_stanza_must_be_alone() -> None:
    blob = _enc(b"x")
    lines = blob.split(b"\n")
    extra = [b"-> grease-me arg", b""]
    forged = b"\n".join(lines[:3] + extra + lines[3:])
    with pytest.raises(AgeFormatError, match="only stanza"):
        _dec(forged)


def test_x25519_file_is_refused_with_a_hint() -> None:
    ident = pyrage.x25519.Identity.generate()
    blob = pyrage.encrypt(b"data", [ident.to_public()])
    assert not is_scrypt_header(blob[:64])
    with pytest.raises(AgeFormatError, match="identity"):
        _dec(blob)


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"", "empty input"),
        (b"PK\x03\x04 some zip file\n", "version line"),
        (b"age-encryption.org/v1\n-> scrypt", "truncated"),
        (b"\x00" * 100_000, "too long"),
    ],
)
def test_foreign_input(blob: bytes, match: str) -> None:
    assert not is_scrypt_header(blob)
    with pytest.raises(AgeFormatError, match=match):
        _dec(blob)


def test_malformed_work_factor_and_base64() -> None:
    blob = _enc(b"x")
    salt = blob.split(b"\n")[1].split(b" ")[2]
    for bad_line in (
        b"-> scrypt " + salt + b" 010",  # leading zero
        b"-> scrypt " + salt + b" -1",
        b"-> scrypt " + salt + b"= 10",  # padding is not allowed
        b"-> scrypt " + salt[:-1] + b" 10",  # 15-byte salt
        b"-> scrypt " + salt,
    ):
        with pytest.raises(AgeFormatError):
            _dec(_replace_header_line(blob, 1, bad_line))


def test_writer_error_leaves_an_undecryptable_file() -> None:
    """A backup that dies mid-stream must not look complete."""
    out = io.BytesIO()
    with pytest.raises(RuntimeError), ScryptEncryptWriter(out, PW, WF) as w:
        w.write(os.urandom(CHUNK_SIZE * 2))
        raise RuntimeError("producer died")
    with pytest.raises(AgeFormatError):
        _dec(out.getvalue())


def test_argument_validation() -> None:
    with pytest.raises(ValueError):
        ScryptEncryptWriter(io.BytesIO(), "", WF)
    with pytest.raises(ValueError):
        ScryptEncryptWriter(io.BytesIO(), PW, 0)
    w = ScryptEncryptWriter(io.BytesIO(), PW, WF)
    w.close()
    with pytest.raises(ValueError):
        w.write(b"x")


def test_scrypt_derivations_take_turns() -> None:
    """A logical backup stores its globals while the dump streams; two
    overlapping derivations would double scrypt's memory spike (256 MiB at
    the default work factor), so they are serialized."""
    import threading

    from seawall.pipeline import age_scrypt

    done = threading.Event()
    with age_scrypt._SCRYPT_LOCK:
        worker = threading.Thread(
            target=lambda: (age_scrypt._scrypt_key("pw", b"s" * 16, 10), done.set())
        )
        worker.start()
        assert not done.wait(0.5)  # ~1 ms of work: blocked on the lock
    worker.join(10)
    assert done.is_set()
