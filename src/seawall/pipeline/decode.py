"""Decode an artifact back into a stream: the mirror image of :mod:`store`.

The stored bytes are read once, into a private spool while they are
hashed (:mod:`seawall.pipeline.spool`); nothing is decoded before their
sha256 matches the manifest, and what is decoded is the spool, so the
bytes that reach the consumer are the bytes that were hashed. Then
decrypt → decompress → consumer. The read side is
push-based: the decryptor pushes into the decompressor, which pushes into
the consumer (a file, pg_restore's stdin, a hash). Encryption is detected
from the bytes (:func:`sniff_encryption`): age X25519, age scrypt, or the
legacy ``openssl enc`` files of the operators' old scripts.

No pydantic, no settings imports (the general ``wal-fetch`` uses it).
"""

from __future__ import annotations

import hashlib
import os
import sys
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from seawall.errors import DecryptionError, StorageError, VerificationError
from seawall.pipeline.adapters import (
    CountingReader,
    CountingSink,
    PrefetchReader,
    Progress,
    copy_stream,
)
from seawall.pipeline.codecs import CHUNK, Sink, decompress_writer
from seawall.pipeline.keys import KeyRing
from seawall.pipeline.spool import Spooled, spool
from seawall.pipeline.staged import StagedFile
from seawall.storage.base import Storage
from seawall.storage.mirror import first_good_copy

AGE_MAGIC = b"age-encryption.org/v1\n"
OPENSSL_MAGIC = b"Salted__"


@dataclass
class DecodeResult:
    raw_size: int
    stored_size: int
    sha256: str
    compression: str | None
    encryption: str | None


def sha256_of(storage: Storage, key: str) -> tuple[str, int]:
    """sha256 and size of the stored bytes of ``key``."""
    h = hashlib.sha256()
    size = 0
    with storage.open_read(key) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def sniff_encryption(head: bytes) -> str | None:
    """``x25519`` / ``scrypt`` (age), ``openssl`` (legacy), or None."""
    if head.startswith(AGE_MAGIC):
        stanza = head[len(AGE_MAGIC) :].split(b"\n", 1)[0]
        return "scrypt" if stanza.startswith(b"-> scrypt ") else "x25519"
    if head.startswith(OPENSSL_MAGIC):
        return "openssl"
    return None


def check_stored_size(storage: Storage, key: str, expected: int) -> None:
    """VerificationError unless the stored object has the manifest's ``stored_size``."""
    actual = storage.stat(key).size
    if actual != expected:
        raise VerificationError(
            f"{key}: {actual} bytes stored but the manifest says {expected} (stored_size): "
            "the file is truncated or was modified; restore from another backup"
        )


def decode_to(
    storage: Storage,
    key: str,
    sink: Sink,
    keys: KeyRing | None,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    compression: str | None = None,
    precheck: bool = True,
    progress: Progress | None = None,
) -> DecodeResult:
    """Decode the artifact at ``key`` into ``sink``.

    With ``expected_sha256`` (and ``precheck``, the default) the stored bytes
    are read once into a private spool (:mod:`seawall.pipeline.spool`) while
    they are hashed, and decoded from the spool only if they match: nothing
    reaches ``sink`` unless the sha256 is right, and the bytes decoded are the
    bytes hashed. ``precheck=False`` is for callers that act on nothing before
    this returns (a verification reading the content): one streaming pass,
    the sha256 checked at the end, no scratch space. ``compression=None``
    and an unknown encryption mean "detect from the bytes" (foreign and
    legacy files). With ``expected_size`` (the manifest's ``stored_size``)
    the object's size is compared first: a truncated or grown artifact is
    named as such, before any byte is read.
    """
    if isinstance(sink, StagedFile) and expected_sha256 and precheck:
        return _decode_staged(
            storage, key, sink, keys, expected_sha256, expected_size, compression, progress
        )
    spooled: Spooled | None = None

    def check(repo: Storage) -> None:
        nonlocal spooled
        if expected_size is not None:
            check_stored_size(repo, key, expected_size)
        if expected_sha256 and precheck:
            size = expected_size if expected_size is not None else repo.stat(key).size
            got = spool(repo, key, size)
            if got.sha256 != expected_sha256:
                got.file.close()
                raise VerificationError(
                    f"{key}: sha256 mismatch (manifest {expected_sha256[:16]}…, file "
                    f"{got.sha256[:16]}…): the stored file is corrupt or was modified; "
                    "restore from another backup"
                )
            spooled = got

    # with MIRRORS: the first repository whose copy passes (primary first), named in the log
    storage = first_good_copy(storage, key, check)
    if spooled is not None:
        # the spool is private and its sha256 matched: no second hash while decoding
        with spooled.file as fh:
            return _decode(
                fh, sink, keys, key, compression, progress, trusted=spooled, expected_sha256=None
            )
    with storage.open_read(key) as raw:
        return _decode(
            raw, sink, keys, key, compression, progress, size=_size_of(raw),
            expected_sha256=expected_sha256,
        )  # fmt: skip


#: Read (and hash) the object in a thread ahead of the decoder (socket reads
#: and sha256 release the GIL). Without it (one thread) 2 GiB from S3 took
#: 26.3 s against 19.4 s in the same run (docs/benchmarks.md, session 7);
#: False is kept for that bench row.
STAGED_READ_AHEAD = True


def _decode_staged(
    storage: Storage,
    key: str,
    sink: StagedFile,
    keys: KeyRing | None,
    expected_sha256: str,
    expected_size: int | None,
    compression: str | None,
    progress: Progress | None,
) -> DecodeResult:
    """Decode WHILE downloading and hashing, into a file nobody sees before it checks out.

    One read of the object: a thread reads and hashes it a few chunks ahead
    (socket reads and sha256 release the GIL) while this thread decrypts,
    decompresses and writes the hidden temporary of ``sink``. The sha256 is
    compared at the end; only a match marks ``sink`` checked, and only a
    checked ``StagedFile`` can be renamed into place (ADR 0016, addendum).
    With MIRRORS a bad copy empties the temporary and the next copy is read.
    """
    result: DecodeResult | None = None

    def attempt(repo: Storage) -> None:
        nonlocal result
        if expected_size is not None:
            check_stored_size(repo, key, expected_size)
        sink.reset()
        with repo.open_read(key) as raw:
            if not STAGED_READ_AHEAD:
                result = _decode(
                    raw, sink, keys, key, compression, progress, size=expected_size,
                    expected_sha256=expected_sha256,
                )  # fmt: skip
                return
            hashed = CountingReader(raw)
            ahead = PrefetchReader(hashed)  # type: ignore[arg-type]
            try:
                result = _decode(
                    ahead, sink, keys, key, compression, progress, size=expected_size,
                    expected_sha256=expected_sha256, hashed=hashed,
                )  # fmt: skip
            finally:
                ahead.close()

    first_good_copy(storage, key, attempt)
    assert result is not None
    sink.mark_checked(result.sha256)
    return result


def _decode(
    raw: BinaryIO | PrefetchReader,
    sink: Sink,
    keys: KeyRing | None,
    key: str,
    compression: str | None,
    progress: Progress | None,
    *,
    expected_sha256: str | None,
    trusted: Spooled | None = None,
    size: int | None = None,
    hashed: CountingReader | None = None,
) -> DecodeResult:
    """Decrypt and decompress ``raw`` into ``sink``; hash it unless it is a ``trusted`` spool.

    ``hashed``: the reader under ``raw`` (a prefetching thread) that already
    counts and hashes the stored bytes; nothing is hashed twice.
    """
    head = raw.read(256)
    reader = CountingReader(raw, prefix=head, hashing=trusted is None and hashed is None)
    counted = hashed or reader
    encryption = sniff_encryption(head)
    if encryption == "openssl" and (expected_sha256 or trusted):
        # seawall never writes openssl-encrypted artifacts: an artifact with a
        # manifest whose raw bytes happen to start with "Salted__" is plain.
        encryption = None
    counting = CountingSink(sink, progress)
    dec = decompress_writer(counting, compression)
    try:
        try:
            _decrypt(reader, dec, encryption, keys, key, trusted.size if trusted else size)
            dec.close()
        except (zstandard.ZstdError, zlib.error) as exc:
            raise VerificationError(
                f"{key}: corrupt compressed data ({exc}); the artifact is damaged"
            ) from exc
        except OSError as exc:
            raise StorageError(f"{key}: I/O error while decoding: {exc}") from exc
    except VerificationError as exc:
        # Name the root cause: if the stored bytes differ from the manifest,
        # say so rather than which decoding stage tripped over them first.
        if expected_sha256:
            while reader.read(CHUNK):
                pass
            if counted.hexdigest() != expected_sha256:
                raise VerificationError(
                    f"{key}: sha256 mismatch (the stored file is corrupt or was modified; "
                    f"decoding failed: {exc}); restore from another backup"
                ) from exc
        raise
    if hashed is not None:
        while reader.read(CHUNK):  # to the end: the hash covers every stored byte
            pass
    digest = trusted.sha256 if trusted else counted.hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise VerificationError(
            f"{key}: sha256 mismatch while reading (the file changed or is corrupt)"
        )
    detected = getattr(dec, "detected", None) or compression
    return DecodeResult(counting.count, counted.count, digest, detected, encryption)


def _size_of(raw: object) -> int | None:
    try:
        return os.fstat(raw.fileno()).st_size  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


#: Below this stored size, X25519 files are decrypted with pyrage: its import
#: costs ~1 ms against ~13 ms for ``cryptography``'s AEAD, which is more than
#: OpenSSL's speed saves on a compressed WAL segment (wal-fetch runs once per
#: segment in a fresh process). Above it, ``age_x25519`` (3.5x faster).
SMALL_AGE_FILE = 8 << 20


def _decrypt_x25519(
    reader: CountingReader, dec: Sink, keys: KeyRing | None, key: str, size: int | None
) -> None:
    """age X25519: ours (OpenSSL) in general, pyrage for small files in a fresh process."""
    if keys is None or not keys.identities:
        raise DecryptionError(
            f"{key} is encrypted to age X25519 recipients but no identity is configured; "
            "set ENCRYPTION_IDENTITY or ENCRYPTION_IDENTITY_FILE to the secret key"
        )
    no_match = (
        f"cannot decrypt {key}: none of the configured identities matches its "
        "recipients; set ENCRYPTION_IDENTITY to the key it was made with "
        "(several may be given after a key rotation)"
    )
    corrupt = f"{key}: encrypted data failed authentication ({{}}); the artifact is corrupt"
    if (
        size is not None
        and size < SMALL_AGE_FILE
        and "cryptography.hazmat.primitives.ciphers.aead" not in sys.modules
    ):
        import pyrage
        from pyrage import x25519

        try:
            pyrage.decrypt_io(reader, dec, [x25519.Identity.from_str(i) for i in keys.identities])
        except pyrage.DecryptError as exc:
            text = str(exc).lower()
            if "no matching keys" in text or "no identity matched" in text:
                raise DecryptionError(no_match) from exc
            raise VerificationError(corrupt.format(exc)) from exc
        except OSError as exc:
            if "decryption" in str(exc).lower():
                raise VerificationError(
                    f"{key}: encrypted data failed authentication; the artifact is corrupt "
                    "or truncated"
                ) from exc
            raise
        return
    from seawall.pipeline.age_scrypt import AgeFormatError
    from seawall.pipeline.age_x25519 import (
        NoIdentityMatchedError,
        RecipientError,
        decrypt_x25519_io,
    )

    try:
        decrypt_x25519_io(reader, dec, keys.identities)
    except RecipientError as exc:
        raise DecryptionError(
            f"cannot decrypt {key}: ENCRYPTION_IDENTITY holds an invalid age secret key "
            f"({exc}); `seawall keygen` makes one"
        ) from exc
    except NoIdentityMatchedError as exc:
        raise DecryptionError(f"{no_match} ({exc})") from exc
    except AgeFormatError as exc:
        raise VerificationError(corrupt.format(exc)) from exc


def _decrypt(
    reader: CountingReader,
    dec: Sink,
    encryption: str | None,
    keys: KeyRing | None,
    key: str,
    size: int | None = None,
) -> None:
    if encryption is None:
        copy_stream(reader, dec)
        return
    if encryption == "x25519":
        _decrypt_x25519(reader, dec, keys, key, size)
        return
    if encryption == "scrypt":
        from seawall.pipeline.age_scrypt import (
            AgeFormatError,
            WrongPassphraseError,
            decrypt_passphrase_io,
        )

        if keys is None or not keys.passphrase:
            raise DecryptionError(
                f"{key} is passphrase-encrypted (age scrypt) but ENCRYPTION_KEY is not set"
            )
        try:
            decrypt_passphrase_io(reader, dec, keys.passphrase)
        except WrongPassphraseError as exc:
            raise DecryptionError(
                f"cannot decrypt {key}: wrong passphrase; set ENCRYPTION_KEY to the one it was made with"
            ) from exc
        except AgeFormatError as exc:
            raise VerificationError(f"{key}: corrupt encrypted data ({exc})") from exc
        return
    if encryption == "openssl":
        from seawall.pipeline.openssl_legacy import LegacyDecryptError, decrypt_openssl_io

        if keys is None or not keys.passphrase:
            raise DecryptionError(
                f"{key} is a legacy openssl-encrypted file but ENCRYPTION_KEY is not set"
            )
        try:
            decrypt_openssl_io(reader, dec, keys.passphrase)
        except LegacyDecryptError as exc:
            raise DecryptionError(f"cannot decrypt {key}: {exc}") from exc
        return
    raise VerificationError(f"{key}: unknown encryption {encryption!r}")
