"""The age header MAC is what binds the header together (issue 18, item 3).

Flipping a byte inside a recipient stanza fails key unwrapping before the
MAC is ever compared, so that test cannot notice a MAC check that is
switched off. These tamper with what only the MAC protects: the MAC line
itself, an added stanza, a removed stanza, reordered stanzas; and the
version line. Each must fail as *corruption* (AgeFormatError; through the
pipeline VerificationError, exit 3), never as "wrong key" (exit 8), and
never decrypt. The stock ``age`` CLI and pyrage must refuse every tampered
file too: that proves the tampering really breaks the format.

Checked against the bug it guards: with the header MAC comparison removed
from ``age_x25519.decrypt_x25519_io`` (or from ``ScryptDecryptReader``)
these tests fail.
"""

from __future__ import annotations

import base64
import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest
from pyrage import passphrase as pyrage_passphrase, x25519 as pyrage_x25519

from seawall.errors import SeawallError, VerificationError
from seawall.pipeline import KeyRing, decode_to
from seawall.pipeline.age_scrypt import (
    AgeFormatError,
    decrypt_passphrase_io,
    encrypt_passphrase_io,
)
from seawall.pipeline.age_x25519 import decrypt_x25519_io, encrypt_x25519_io
from seawall.pipeline.keys import generate_identity
from seawall.storage.local import LocalStorage

SECRET, PUBLIC = generate_identity()
_, OTHER_PUBLIC = generate_identity()
PW = "correct horse battery staple"
DATA = b"the payload " * 20_000  # several STREAM chunks


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _split(blob: bytes) -> tuple[bytes, list[bytes], bytes, bytes]:
    """(version line, stanzas (each with its body lines), MAC b64, payload)."""
    end = blob.index(b"\n--- ") + 1
    header, rest = blob[:end], blob[end:]
    mac_line, payload = rest.split(b"\n", 1)
    lines = header.rstrip(b"\n").split(b"\n")
    stanzas: list[bytes] = []
    for line in lines[1:]:
        if line.startswith(b"-> "):
            stanzas.append(line + b"\n")
        else:
            stanzas[-1] += line + b"\n"
    return lines[0], stanzas, mac_line[4:], payload


def _join(version: bytes, stanzas: list[bytes], mac: bytes, payload: bytes) -> bytes:
    return version + b"\n" + b"".join(stanzas) + b"--- " + mac + b"\n" + payload


def _other_mac(mac: bytes) -> bytes:
    raw = bytearray(base64.b64decode(mac + b"=" * (-len(mac) % 4)))
    raw[7] ^= 0x01
    return _b64(bytes(raw))


FOREIGN_STANZA = b"-> ssh-ed25519 Zm9vYmFy " + _b64(b"x" * 32) + b"\n" + _b64(b"y" * 32) + b"\n"


def _x25519_blob() -> bytes:
    out = io.BytesIO()
    encrypt_x25519_io(io.BytesIO(DATA), out, [PUBLIC, OTHER_PUBLIC])
    return out.getvalue()


def _scrypt_blob() -> bytes:
    out = io.BytesIO()
    encrypt_passphrase_io(io.BytesIO(DATA), out, PW, 10)
    return out.getvalue()


Tamper = Callable[[bytes, list[bytes], bytes, bytes], bytes]

X25519_TAMPERS: dict[str, tuple[Tamper, str]] = {
    "mac-line": (lambda v, s, m, p: _join(v, s, _other_mac(m), p), "MAC mismatch"),
    "stanza-added": (lambda v, s, m, p: _join(v, [*s, FOREIGN_STANZA], m, p), "MAC mismatch"),
    "stanza-added-first": (lambda v, s, m, p: _join(v, [FOREIGN_STANZA, *s], m, p), "MAC mismatch"),
    "stanza-removed": (lambda v, s, m, p: _join(v, s[:1], m, p), "MAC mismatch"),
    "stanzas-reordered": (lambda v, s, m, p: _join(v, s[::-1], m, p), "MAC mismatch"),
    "version-line": (
        lambda v, s, m, p: _join(b"age-encryption.org/v2", s, m, p),
        "bad version line",
    ),
}

SCRYPT_TAMPERS: dict[str, tuple[Tamper, str]] = {
    "mac-line": (lambda v, s, m, p: _join(v, s, _other_mac(m), p), "MAC mismatch"),
    "stanza-added": (lambda v, s, m, p: _join(v, [*s, FOREIGN_STANZA], m, p), "only stanza"),
    "stanza-added-first": (
        lambda v, s, m, p: _join(v, [FOREIGN_STANZA, *s], m, p),
        "only stanza",
    ),
    "version-line": (
        lambda v, s, m, p: _join(b"age-encryption.org/v2", s, m, p),
        "bad version line",
    ),
}

_X25519 = _x25519_blob()
_SCRYPT = _scrypt_blob()


def test_untampered_files_decrypt() -> None:
    """The control: the splitting and joining above changes nothing by itself."""
    for blob in (_X25519, _join(*_split(_X25519))):
        out = io.BytesIO()
        decrypt_x25519_io(io.BytesIO(blob), out, [SECRET])
        assert out.getvalue() == DATA
    out = io.BytesIO()
    decrypt_passphrase_io(io.BytesIO(_join(*_split(_SCRYPT))), out, PW)
    assert out.getvalue() == DATA
    assert len(_split(_X25519)[1]) == 2


@pytest.mark.parametrize("case", sorted(X25519_TAMPERS))
def test_x25519_header_tamper_is_corruption(case: str, tmp_path: Path) -> None:
    tamper, message = X25519_TAMPERS[case]
    bad = tamper(*_split(_X25519))
    out = io.BytesIO()
    with pytest.raises(AgeFormatError, match=message):
        decrypt_x25519_io(io.BytesIO(bad), out, [SECRET])
    assert out.getvalue() == b"", "plaintext written before the header was authenticated"

    if case != "version-line":  # without the age magic the pipeline does not see age at all
        # through the pipeline: corruption (exit 3), not "wrong key" (exit 8)
        storage = LocalStorage(tmp_path / "store")
        storage.write_bytes("a.zst.age", bad)
        sink = io.BytesIO()
        keys = KeyRing(identities=(SECRET,))
        with pytest.raises(VerificationError, match=message) as caught:
            decode_to(storage, "a.zst.age", sink, keys, compression="none")
        assert caught.value.exit_code == 3 and sink.getvalue() == b""

    # the reference implementations agree that the file is broken
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(bad, [pyrage_x25519.Identity.from_str(SECRET)])
    key = tmp_path / "key.txt"
    key.write_text(SECRET + "\n")
    (tmp_path / "bad.age").write_bytes(bad)
    res = subprocess.run(
        ["age", "-d", "-i", str(key), str(tmp_path / "bad.age")], capture_output=True
    )
    assert res.returncode != 0 and res.stdout == b""


@pytest.mark.parametrize("case", sorted(SCRYPT_TAMPERS))
def test_scrypt_header_tamper_is_corruption(case: str, tmp_path: Path) -> None:
    tamper, message = SCRYPT_TAMPERS[case]
    bad = tamper(*_split(_SCRYPT))
    out = io.BytesIO()
    with pytest.raises(AgeFormatError, match=message):
        decrypt_passphrase_io(io.BytesIO(bad), out, PW)
    assert out.getvalue() == b""

    if case != "version-line":
        storage = LocalStorage(tmp_path / "store")
        storage.write_bytes("a.zst.age", bad)
        sink = io.BytesIO()
        with pytest.raises(SeawallError) as caught:
            decode_to(storage, "a.zst.age", sink, KeyRing(passphrase=PW), compression="none")
        assert sink.getvalue() == b""
        # A foreign stanza first makes the file look X25519-encrypted, so the
        # pipeline asks for an identity (exit 8); otherwise it is corruption.
        assert caught.value.exit_code == (8 if case == "stanza-added-first" else 3)

    with pytest.raises(pyrage.DecryptError):
        pyrage_passphrase.decrypt(bad, PW)
