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

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from seawall.pipeline.decrypting import (
    ByteSink,
    ByteSource,
    DecryptingReader,
    decrypt_into,
    read_exact,
)

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


class LegacyDecryptError(ValueError):
    """A legacy openssl-encrypted backup could not be decrypted."""


def is_openssl_salted(first_bytes: bytes) -> bool:
    """Whether ``first_bytes`` start a salted ``openssl enc`` file (binary form)."""
    return first_bytes.startswith(MAGIC)


class OpenSSLDecryptReader(DecryptingReader):
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
        header = read_exact(src, len(MAGIC) + SALT_SIZE)
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
        super().__init__()
        self._src = src
        self._decryptor = cipher.decryptor()
        self._unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
        self._seen_ciphertext = False

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


def decrypt_openssl_io(
    reader: ByteSource,
    writer: ByteSink,
    password: str,
    iterations: int = DEFAULT_ITERATIONS,
    digest: str = "sha256",
) -> None:
    """Decrypt a salted ``openssl enc -aes-256-cbc -pbkdf2`` stream into ``writer``."""
    decrypt_into(OpenSSLDecryptReader(reader, password, iterations, digest), writer, _READ_SIZE)
