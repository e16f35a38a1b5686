"""Streaming age v1 encryption with the scrypt (passphrase) recipient.

Why this exists: pyrage streams for X25519 recipients but its passphrase mode
only takes and returns ``bytes``, which would hold a whole backup in memory.
This module implements the same wire format (https://age-encryption.org/v1,
C2SP ``age.md``) with the ``cryptography`` package only, so that files it
writes decrypt with the stock ``age -d`` CLI and files written by ``age -p``
decrypt here — the disaster-recovery promise — while memory stays bounded by
one 64 KiB STREAM chunk.

Format summary (what the code below follows):

* header: ``age-encryption.org/v1\\n``, exactly one stanza
  ``-> scrypt <b64 16-byte salt> <logN>\\n<b64 body>\\n`` whose body is the
  16-byte file key sealed with ChaCha20-Poly1305 (zero nonce) under
  ``scrypt(passphrase, "age-encryption.org/v1/scrypt" || salt, N=2^logN, r=8,
  p=1)``, then ``--- <b64 HMAC-SHA256>\\n``. The MAC key is
  HKDF-SHA256(file key, salt="", info="header") and covers the header up to
  and including ``---``. Base64 is standard alphabet, no padding, canonical,
  wrapped at 64 columns with a final line shorter than 64 (possibly empty).
* payload: a random 16-byte nonce, then STREAM: 64 KiB plaintext chunks, each
  sealed with ChaCha20-Poly1305 under HKDF-SHA256(file key, salt=nonce,
  info="payload") with the 12-byte nonce ``counter(11 bytes, big endian) ||
  last-flag``. Only the last chunk has the flag 0x01; it may be full, and it
  is empty only when the whole plaintext is empty.

Memory note: scrypt itself needs 128 * r * 2^logN bytes while the key is being
derived (256 MiB at the default work factor 18), freed right after. That is a
short spike per file, not growth with the data. Derivations are serialized
(one lock per process): a logical backup stores its globals artifact while
the dump streams, and two overlapping derivations would double the spike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from seawall.pipeline.decrypting import (
    ByteSink,
    ByteSource,
    DecryptingReader,
    decrypt_into,
    read_exact,
)

__all__ = [
    "AgeFormatError",
    "ScryptDecryptReader",
    "ScryptEncryptWriter",
    "WrongPassphraseError",
    "decrypt_passphrase_io",
    "encrypt_passphrase_io",
    "is_scrypt_header",
]

VERSION_LINE = b"age-encryption.org/v1"
SCRYPT_SALT_LABEL = b"age-encryption.org/v1/scrypt"
_SCRYPT_PREFIX = VERSION_LINE + b"\n-> scrypt "

CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
FILE_KEY_SIZE = 16
SALT_SIZE = 16
PAYLOAD_NONCE_SIZE = 16
_ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
_WRAP_COLUMNS = 64
# The age spec leaves header limits to implementations; a scrypt header is
# ~130 bytes, so anything beyond this is garbage, not a big header.
_MAX_HEADER_BYTES = 64 * 1024
_MAX_COUNTER = (1 << 88) - 1

DEFAULT_WORK_FACTOR = 18
DEFAULT_MAX_WORK_FACTOR = 22
_MIN_WORK_FACTOR = 1
_MAX_ALLOWED_WORK_FACTOR = 30

_B64_RE = re.compile(rb"[A-Za-z0-9+/]*")
_DECIMAL_RE = re.compile(rb"[1-9][0-9]*")


class AgeFormatError(ValueError):
    """The input is not a valid, complete age passphrase file (corrupt, truncated or foreign)."""


class WrongPassphraseError(ValueError):
    """The passphrase does not open this file (or its header stanza is corrupt)."""


def is_scrypt_header(first_bytes: bytes) -> bool:
    """Whether ``first_bytes`` start an age file encrypted to a passphrase.

    Callers peek at the first few dozen bytes (32 suffice) to pick between
    pyrage (X25519 recipients) and this module. ASCII-armored age files are
    not recognised (seawall never writes them).
    """
    return first_bytes.startswith(_SCRYPT_PREFIX)


# --------------------------------------------------------------------------
# primitives


def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(data: bytes) -> bytes:
    """Strict, canonical, unpadded base64 as the age spec requires."""
    if not _B64_RE.fullmatch(data) or len(data) % 4 == 1:
        raise AgeFormatError("age header: invalid base64")
    try:
        out = base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except binascii.Error as exc:
        raise AgeFormatError("age header: invalid base64") from exc
    if _b64encode(out) != data:
        raise AgeFormatError("age header: non-canonical base64")
    return out


def _wrap_body(body: bytes) -> bytes:
    """Base64 body lines: full 64-column lines, then one shorter (maybe empty) line."""
    enc = _b64encode(body)
    lines = [enc[i : i + _WRAP_COLUMNS] for i in range(0, len(enc), _WRAP_COLUMNS)]
    if not lines or len(lines[-1]) == _WRAP_COLUMNS:
        lines.append(b"")
    return b"".join(line + b"\n" for line in lines)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


_SCRYPT_LOCK = threading.Lock()


def _scrypt_key(passphrase: str, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=SCRYPT_SALT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    with _SCRYPT_LOCK:  # one 128 * r * 2^logN spike at a time (module docstring)
        return kdf.derive(passphrase.encode("utf-8"))


def _header_mac(file_key: bytes, header_up_to_dashes: bytes) -> bytes:
    mac_key = _hkdf(file_key, b"", b"header")
    return hmac.new(mac_key, header_up_to_dashes, hashlib.sha256).digest()


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _check_work_factor(work_factor: int) -> None:
    if not _MIN_WORK_FACTOR <= work_factor <= _MAX_ALLOWED_WORK_FACTOR:
        raise ValueError(
            f"scrypt work factor must be between {_MIN_WORK_FACTOR} and "
            f"{_MAX_ALLOWED_WORK_FACTOR}, got {work_factor}"
        )


def _check_passphrase(passphrase: str) -> None:
    if not isinstance(passphrase, str) or passphrase == "":
        raise ValueError("passphrase must be a non-empty string")


# --------------------------------------------------------------------------
# encryption


class ScryptEncryptWriter:
    """Write-only file object: bytes written are encrypted to ``dest`` as age.

    The header is written on construction (scrypt runs there, ~1 s at work
    factor 18). At most one 64 KiB chunk is buffered: a chunk is only sealed
    once a later byte proves it is not the last one, because the last chunk
    carries a different nonce flag. ``close()`` seals the final chunk; it does
    not close ``dest`` (the caller owns it, e.g. to fsync and rename).
    """

    def __init__(
        self, dest: ByteSink, passphrase: str, work_factor: int = DEFAULT_WORK_FACTOR
    ) -> None:
        _check_passphrase(passphrase)
        _check_work_factor(work_factor)
        self._dest = dest
        file_key = os.urandom(FILE_KEY_SIZE)
        salt = os.urandom(SALT_SIZE)
        wrap_key = _scrypt_key(passphrase, salt, work_factor)
        body = ChaCha20Poly1305(wrap_key).encrypt(b"\x00" * 12, file_key, None)
        header = (
            VERSION_LINE
            + b"\n-> scrypt "
            + _b64encode(salt)
            + b" "
            + str(work_factor).encode("ascii")
            + b"\n"
            + _wrap_body(body)
            + b"---"
        )
        mac = _header_mac(file_key, header)
        nonce = os.urandom(PAYLOAD_NONCE_SIZE)
        dest.write(header + b" " + _b64encode(mac) + b"\n" + nonce)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._buf = bytearray()
        self._counter = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed ScryptEncryptWriter")
        view = memoryview(data).cast("B")
        n = len(view)
        pos = 0
        while pos < n:
            take = min(n - pos, CHUNK_SIZE + 1 - len(self._buf))
            self._buf += view[pos : pos + take]
            pos += take
            if len(self._buf) > CHUNK_SIZE:
                # A byte beyond a full chunk exists, so that chunk is not last.
                self._seal(bytes(self._buf[:CHUNK_SIZE]), last=False)
                del self._buf[:CHUNK_SIZE]
        return n

    def _seal(self, chunk: bytes, last: bool) -> None:
        if self._counter > _MAX_COUNTER:
            raise OverflowError("age STREAM counter overflow")
        self._dest.write(self._aead.encrypt(_chunk_nonce(self._counter, last), chunk, None))
        self._counter += 1

    def flush(self) -> None:
        """No-op: the pending chunk cannot be sealed before it is known whether it is last."""

    def close(self) -> None:
        if self._closed:
            return
        self._seal(bytes(self._buf), last=True)
        self._buf.clear()
        self._closed = True

    def __enter__(self) -> ScryptEncryptWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # On error leave the output unterminated: a truncated age file fails
        # to decrypt, which is what a failed backup must look like.
        if exc_type is None:
            self.close()
        else:
            self._closed = True


def encrypt_passphrase_io(
    reader: ByteSource,
    writer: ByteSink,
    passphrase: str,
    work_factor: int = DEFAULT_WORK_FACTOR,
) -> None:
    """Encrypt everything from ``reader`` to ``writer`` as an age scrypt file."""
    enc = ScryptEncryptWriter(writer, passphrase, work_factor)
    while True:
        block = reader.read(CHUNK_SIZE)
        if not block:
            break
        enc.write(block)
    enc.close()


# --------------------------------------------------------------------------
# decryption


def _read_header(src: ByteSource) -> tuple[list[bytes], bytes]:
    """Read header lines up to and including the ``---`` line.

    Reads in small blocks and returns the bytes read past the header (the
    start of the payload) so that unbuffered sources work too.
    """
    buf = b""
    lines: list[bytes] = []
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            if sum(len(x) + 1 for x in lines) + len(buf) > _MAX_HEADER_BYTES:
                raise AgeFormatError("age header too long: not an age file or corrupt")
            block = src.read(4096)
            if not block:
                if not lines and not buf:
                    raise AgeFormatError("empty input: not an age file")
                raise AgeFormatError("age header is truncated")
            buf += block
            continue
        line, buf = buf[:nl], buf[nl + 1 :]
        lines.append(line)
        if len(lines) == 1 and line != VERSION_LINE:
            raise AgeFormatError("not an age v1 file (bad version line)")
        if line.startswith(b"---"):
            return lines, buf


def parse_stanzas(lines: list[bytes]) -> tuple[list[tuple[list[bytes], bytes]], bytes, bytes]:
    """Return (stanzas as (arguments, decoded body), MACed header bytes, MAC)."""
    stanzas: list[tuple[list[bytes], bytes]] = []
    i = 1
    while i < len(lines) - 1:
        line = lines[i]
        if not line.startswith(b"-> "):
            raise AgeFormatError("age header: malformed stanza line")
        args = line[3:].split(b" ")
        if any(not a or any(c < 33 or c > 126 for c in a) for a in args):
            raise AgeFormatError("age header: malformed stanza arguments")
        i += 1
        body_b64 = b""
        while True:
            if i >= len(lines) - 1:
                raise AgeFormatError("age header: stanza body missing")
            part = lines[i]
            i += 1
            if len(part) > _WRAP_COLUMNS:
                raise AgeFormatError("age header: stanza body line too long")
            body_b64 += part
            if len(part) < _WRAP_COLUMNS:
                break
        stanzas.append((args, _b64decode(body_b64)))
    mac_line = lines[-1]
    if not mac_line.startswith(b"--- "):
        raise AgeFormatError("age header: malformed MAC line")
    mac = _b64decode(mac_line[4:])
    if len(mac) != 32:
        raise AgeFormatError("age header: MAC has the wrong length")
    if not stanzas:
        raise AgeFormatError("age header has no recipient stanza")
    maced = b"".join(line + b"\n" for line in lines[:-1]) + b"---"
    return stanzas, maced, mac


def _parse_header(lines: list[bytes]) -> tuple[bytes, int, bytes, bytes, bytes]:
    """Return (salt, log_n, wrapped file key, MACed header bytes, MAC)."""
    stanzas, maced, mac = parse_stanzas(lines)
    scrypt = [s for s in stanzas if s[0][0] == b"scrypt"]
    if not scrypt:
        raise AgeFormatError(
            "age file is not passphrase-encrypted (no scrypt stanza): decrypt it with an identity"
        )
    if len(stanzas) != 1:
        raise AgeFormatError("age header: an scrypt stanza must be the only stanza")
    args, body = scrypt[0]
    if len(args) != 3:
        raise AgeFormatError("age header: scrypt stanza needs a salt and a work factor")
    salt = _b64decode(args[1])
    if len(salt) != SALT_SIZE:
        raise AgeFormatError("age header: scrypt salt must be 16 bytes")
    if not _DECIMAL_RE.fullmatch(args[2]) or len(args[2]) > 2:
        raise AgeFormatError("age header: invalid scrypt work factor")
    log_n = int(args[2])
    if len(body) != FILE_KEY_SIZE + TAG_SIZE:
        raise AgeFormatError("age header: scrypt stanza body has the wrong length")
    return salt, log_n, body, maced, mac


class ScryptDecryptReader(DecryptingReader):
    """Read-only file object yielding the plaintext of an age scrypt file.

    The header is read and authenticated on construction, so a wrong
    passphrase or a foreign file fails before any plaintext is produced.
    Payload chunks are authenticated one at a time; plaintext is only
    returned once its chunk's tag has been verified, and end-of-file is only
    reported after the chunk flagged "last" (truncation is an error).
    """

    def __init__(
        self,
        src: ByteSource,
        passphrase: str,
        max_work_factor: int = DEFAULT_MAX_WORK_FACTOR,
    ) -> None:
        _check_passphrase(passphrase)
        self._src = src
        lines, rest = _read_header(src)
        salt, log_n, wrapped, maced, mac = _parse_header(lines)
        if log_n > max_work_factor:
            raise AgeFormatError(
                f"age scrypt work factor {log_n} exceeds the maximum {max_work_factor}"
            )
        wrap_key = _scrypt_key(passphrase, salt, log_n)
        try:
            file_key = ChaCha20Poly1305(wrap_key).decrypt(b"\x00" * 12, wrapped, None)
        except InvalidTag:
            raise WrongPassphraseError(
                "wrong passphrase for this age file (or its header is corrupt)"
            ) from None
        if not hmac.compare_digest(_header_mac(file_key, maced), mac):
            raise AgeFormatError(
                "age header MAC mismatch: the file is corrupt or was tampered with"
            )
        nonce = rest[:PAYLOAD_NONCE_SIZE]
        if len(nonce) < PAYLOAD_NONCE_SIZE:
            nonce += read_exact(src, PAYLOAD_NONCE_SIZE - len(nonce))
        if len(nonce) < PAYLOAD_NONCE_SIZE:
            raise AgeFormatError("age file is truncated (payload nonce missing)")
        super().__init__()
        self._pending = rest[PAYLOAD_NONCE_SIZE:]
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._counter = 0

    def _next_encrypted(self) -> tuple[bytes, bool]:
        """Next sealed chunk and whether the input ends right after it."""
        # Read one byte beyond a full chunk to learn whether it is the last.
        want = _ENC_CHUNK_SIZE + 1
        data = self._pending
        if len(data) < want:
            data += read_exact(self._src, want - len(data))
        chunk, self._pending = data[:_ENC_CHUNK_SIZE], data[_ENC_CHUNK_SIZE:]
        return chunk, not self._pending

    def _fill(self) -> None:
        chunk, at_eof = self._next_encrypted()
        counter = self._counter
        if counter > _MAX_COUNTER:
            raise AgeFormatError("age STREAM counter overflow")
        if len(chunk) < TAG_SIZE:
            raise AgeFormatError("age file is truncated (payload ends mid-chunk or is missing)")
        if at_eof:
            try:
                plain = self._aead.decrypt(_chunk_nonce(counter, True), chunk, None)
            except InvalidTag:
                if len(chunk) == _ENC_CHUNK_SIZE and self._opens(chunk, counter, last=False):
                    raise AgeFormatError(
                        "age file is truncated (the final chunk is missing)"
                    ) from None
                raise AgeFormatError(
                    "age payload authentication failed: the file is corrupt or truncated"
                ) from None
            if not plain and counter > 0:
                raise AgeFormatError("age payload: final chunk is empty (invalid encoding)")
            self._done = True
        else:
            try:
                plain = self._aead.decrypt(_chunk_nonce(counter, False), chunk, None)
            except InvalidTag:
                if self._opens(chunk, counter, last=True):
                    raise AgeFormatError(
                        "age payload: trailing data after the final chunk"
                    ) from None
                raise AgeFormatError(
                    "age payload authentication failed: the file is corrupt"
                ) from None
        self._counter += 1
        self._out = plain

    def _opens(self, chunk: bytes, counter: int, last: bool) -> bool:
        try:
            self._aead.decrypt(_chunk_nonce(counter, last), chunk, None)
        except InvalidTag:
            return False
        return True


def decrypt_passphrase_io(
    reader: ByteSource,
    writer: ByteSink,
    passphrase: str,
    max_work_factor: int = DEFAULT_MAX_WORK_FACTOR,
) -> None:
    """Decrypt an age scrypt file from ``reader`` into ``writer``.

    Plaintext reaches ``writer`` chunk by chunk, each authenticated; a
    truncated or corrupted file raises :class:`AgeFormatError` partway, so the
    caller must treat ``writer``'s content as untrusted until this returns.
    """
    decrypt_into(ScryptDecryptReader(reader, passphrase, max_work_factor), writer, CHUNK_SIZE)
