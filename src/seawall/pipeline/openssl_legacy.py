"""Streaming decryption of the operators' legacy ``openssl enc`` backups.

Why this exists: before seawall, backups were made with
``gzip | openssl enc -aes-256-cbc -pbkdf2 -salt -pass ...`` under
``ENCRYPTION_KEY``. Those files must stay restorable, without shelling out to
openssl (no key in argv) and without loading a dump into memory.

Format written by OpenSSL 3 ``enc -aes-256-cbc -pbkdf2`` (binary, not ``-a``):
``Salted__`` + 8-byte salt, then AES-256-CBC ciphertext with PKCS#7 padding.
Key (32 bytes) and IV (16 bytes) are the first 48 bytes of
PBKDF2-HMAC(password, salt, iterations) where the hash is ``-md`` (default
SHA-256) and ``iterations`` is ``-iter`` (default 10000 with ``-pbkdf2``).

Integrity: CBC has no MAC. A wrong key or a corrupt/truncated file is only
detected by the final padding check, which a wrong key passes by chance about
once in 256 tries; the gzip/zstd layer downstream (CRC, length) is what
really authenticates the plaintext. Callers must keep that layer.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "LegacyDecryptError",
    "OpenSSLDecryptReader",
    "decrypt_openssl_io",
    "is_openssl_salted",
]

MAGIC = b"Salted__"
SALT_SIZE = 8
BLOCK_SIZE = 16
DEFAULT_ITERATIONS = 10000
_READ_SIZE = 64 * 1024

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha512": hashes.SHA512,
    "sha384": hashes.SHA384,
    "sha1": hashes.SHA1,
}


class ByteSource(Protocol):
    """Anything with ``read(n) -> bytes``: a file, a pipe, another pipeline stage."""

    def read(self, size: int = ..., /) -> bytes: ...


class ByteSink(Protocol):
    """Anything with ``write(b)``: a file, a hash wrapper, another pipeline stage."""

    def write(self, data: bytes, /) -> object: ...


class LegacyDecryptError(ValueError):
    """A legacy openssl-encrypted backup could not be decrypted."""


def is_openssl_salted(first_bytes: bytes) -> bool:
    """Whether ``first_bytes`` start a salted ``openssl enc`` file (binary form)."""
    return first_bytes.startswith(MAGIC)


def _read_exact(src: ByteSource, n: int) -> bytes:
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        block = src.read(remaining)
        if not block:
            break
        parts.append(block)
        remaining -= len(block)
    return b"".join(parts)


class OpenSSLDecryptReader(io.RawIOBase):
    """Read-only file object yielding the plaintext of an ``openssl enc`` file.

    ``digest`` is openssl's ``-md`` (sha256 by default in OpenSSL >= 1.1.0);
    ``iterations`` is ``-iter``. Only the PBKDF2 key derivation is supported;
    a file made without ``-pbkdf2`` (EVP_BytesToKey) cannot be told apart from
    one under a wrong key: it decrypts to garbage and fails the padding check.

    The last cipher block is held back until end of input so the PKCS#7
    padding can be stripped and checked; a failure there raises
    :class:`LegacyDecryptError` after earlier plaintext was already returned,
    so consumers must not trust output until EOF was reached cleanly.
    """

    def __init__(
        self,
        src: ByteSource,
        password: str,
        iterations: int = DEFAULT_ITERATIONS,
        digest: str = "sha256",
    ) -> None:
        if not password:
            raise ValueError("password must be a non-empty string")
        if iterations < 1:
            raise ValueError("iterations must be at least 1")
        try:
            algorithm = _DIGESTS[digest.lower()]()
        except KeyError:
            raise ValueError(
                f"unsupported -md digest {digest!r}; expected one of {sorted(_DIGESTS)}"
            ) from None
        header = _read_exact(src, len(MAGIC) + SALT_SIZE)
        if header[: len(MAGIC)] != MAGIC:
            raise LegacyDecryptError(
                "not an openssl-encrypted file (no 'Salted__' header): "
                "wrong file, or made with -a/-nosalt which are not supported"
            )
        if len(header) < len(MAGIC) + SALT_SIZE:
            raise LegacyDecryptError("openssl-encrypted file is truncated (salt missing)")
        salt = header[len(MAGIC) :]
        kdf = PBKDF2HMAC(algorithm=algorithm, length=48, salt=salt, iterations=iterations)
        key_iv = kdf.derive(password.encode("utf-8"))
        cipher = Cipher(algorithms.AES256(key_iv[:32]), modes.CBC(key_iv[32:]))
        self._src = src
        self._decryptor = cipher.decryptor()
        self._unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
        self._out = b""
        self._out_pos = 0
        self._seen_ciphertext = False
        self._done = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        block = self._src.read(_READ_SIZE)
        if block:
            self._seen_ciphertext = True
            self._out = self._unpadder.update(self._decryptor.update(block))
        else:
            self._done = True
            if not self._seen_ciphertext:
                raise LegacyDecryptError("openssl-encrypted file has no data after its header")
            try:
                tail = self._decryptor.finalize()
            except ValueError:
                raise LegacyDecryptError(
                    "openssl-encrypted file is truncated or corrupt "
                    "(length is not a multiple of the AES block)"
                ) from None
            try:
                self._out = self._unpadder.update(tail) + self._unpadder.finalize()
            except ValueError:
                raise LegacyDecryptError(
                    "legacy backup decryption failed (bad padding): "
                    "wrong ENCRYPTION_KEY or corrupt file"
                ) from None
        self._out_pos = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self._checkClosed()
        if size is None or size < 0:
            return self.readall()
        while self._out_pos >= len(self._out):
            if self._done or size == 0:
                return b""
            self._fill()
        end = min(len(self._out), self._out_pos + size)
        out = self._out[self._out_pos : end]
        self._out_pos = end
        return out

    def readall(self) -> bytes:
        parts: list[bytes] = []
        while block := self.read(_READ_SIZE):
            parts.append(block)
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close this reader; ``src`` belongs to the caller and stays open."""
        self._out = b""
        super().close()


def decrypt_openssl_io(
    reader: ByteSource,
    writer: ByteSink,
    password: str,
    iterations: int = DEFAULT_ITERATIONS,
    digest: str = "sha256",
) -> None:
    """Decrypt a salted ``openssl enc -aes-256-cbc -pbkdf2`` stream into ``writer``."""
    dec = OpenSSLDecryptReader(reader, password, iterations, digest)
    while True:
        chunk = dec.read(_READ_SIZE)
        if not chunk:
            break
        writer.write(chunk)
