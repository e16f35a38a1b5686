"""Store a stream as an artifact, and decode an artifact back into a stream.

Write side: producer → count (raw size) → compress → encrypt → sha256 →
atomic file. Read side, the mirror image: sha256 check of the stored bytes
first (nothing is trusted before it matches the manifest), then decrypt →
decompress → consumer, hashing again on the way so a file that changes under
us is caught too.

This module has no pydantic and no settings imports on purpose: ``wal-push``
uses it and must start fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

from seawall.errors import ConfigError, DecryptionError, StorageError, VerificationError
from seawall.pipeline.codecs import CHUNK, PullReader, Sink, compress_reader, decompress_writer
from seawall.pipeline.keys import KeyRing
from seawall.storage.base import Storage
from seawall.storage.mirror import first_good_copy

AGE_MAGIC = b"age-encryption.org/v1\n"
OPENSSL_MAGIC = b"Salted__"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class PipelineSpec:
    """How to store: compression and, if ``keys`` can encrypt, encryption."""

    compression: str = "zstd"
    level: int | None = None
    threads: int = 0
    keys: KeyRing | None = None
    scrypt_work_factor: int = 18
    prefetch: bool = True  # compress in a thread while the main thread encrypts
    #: sha256 of the raw stream as well (costs a hash pass over the raw bytes;
    #: the stored-bytes sha256, age's MACs and zstd's frame checksum already
    #: cover integrity, so big dumps turn it off).
    raw_hash: bool = True
    #: zstd parameters tuned for SQL text (logical dumps), see
    #: :data:`seawall.pipeline.codecs.TEXT_TUNING`; only at the default level.
    text_tuned: bool = False

    @property
    def encryption_mode(self) -> str | None:
        return self.keys.mode if self.keys is not None else None

    def suffix(self) -> str:
        """File suffix that tells a human the decode chain (``.zst.age``)."""
        ext = {"zstd": ".zst", "gzip": ".gz", "none": ""}[self.compression]
        return ext + (".age" if self.encryption_mode else "")


@dataclass
class StoreResult:
    raw_size: int
    stored_size: int
    sha256: str
    raw_sha256: str
    compression: str
    encryption_mode: str | None
    recipient_fingerprints: list[str] = field(default_factory=list)


@dataclass
class DecodeResult:
    raw_size: int
    stored_size: int
    sha256: str
    compression: str | None
    encryption: str | None


class CountingReader(PullReader):
    """Counts and (optionally) hashes bytes as a downstream stage pulls them.

    Used on both sides: raw bytes pulled from the producer (write side) and
    stored bytes pulled by the decryptor (read side, with the already-read
    ``prefix`` that format sniffing consumed).
    """

    def __init__(
        self,
        src: BinaryIO,
        progress: Progress | None = None,
        hashing: bool = True,
        prefix: bytes = b"",
        tap: Callable[[bytes], None] | None = None,
    ) -> None:
        self._src = src
        self._prefix = prefix
        self.count = 0
        self.hash = hashlib.sha256() if hashing else None
        self._progress = progress
        self._tap = tap

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            take = len(self._prefix) if n is None or n < 0 else n
            data, self._prefix = self._prefix[:take], self._prefix[take:]
        else:
            data = self._src.read(n if n and n > 0 else CHUNK)
        if data:
            self.count += len(data)
            if self.hash is not None:
                self.hash.update(data)
            if self._tap is not None:
                self._tap(data)
            if self._progress is not None:
                self._progress(len(data))
        return data

    def hexdigest(self) -> str:
        assert self.hash is not None, "hashing is off for this reader"
        return self.hash.hexdigest()


class HashingWriter:
    """Hashes and counts stored bytes; remembers an OSError (ENOSPC) for a clear report."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self.count = 0
        self.hash = hashlib.sha256()
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            self._dst.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.hash.update(data)
        self.count += len(data)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._dst.flush()

    def sync(self) -> None:
        """fdatasync what was written so far (a no-op for non-file sinks)."""
        self._dst.flush()
        try:
            fd = self._dst.fileno()
        except (AttributeError, OSError, ValueError):
            return
        os.fdatasync(fd)


#: Background writer: fdatasync every this many bytes to overlap writeback.
SYNC_EVERY = 64 << 20


class BackgroundWriter:
    """Hash and write stored bytes in a thread while the encryptor keeps going.

    age hands over 64 KiB pieces; they are gathered into 1 MiB blocks and a
    bounded queue (``depth`` blocks) feeds a thread that hashes (GIL released)
    and writes them, so encryption, hashing and I/O overlap.
    """

    def __init__(self, inner: HashingWriter, depth: int = 4) -> None:
        import queue
        import threading

        self._inner = inner
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seawall-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        unsynced = 0
        while True:
            block = self._q.get()
            if block is None:
                return
            if self._error is None:
                try:
                    self._inner.write(block)
                    unsynced += len(block)
                    if unsynced >= SYNC_EVERY:
                        # Start writeback while encryption continues, so the final
                        # fsync (durability before the rename) has little left to do.
                        self._inner.sync()
                        unsynced = 0
                except BaseException as exc:  # reported to the producer thread
                    self._error = exc

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= CHUNK:
            self._q.put(b"".join(self._pending))
            self._pending, self._pending_size = [], 0
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        """Drain everything to the file; re-raise a write error (ENOSPC)."""
        if self._pending:
            self._q.put(b"".join(self._pending))
            self._pending, self._pending_size = [], 0
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class CountingSink:
    def __init__(self, sink: Sink, progress: Progress | None = None) -> None:
        self._sink = sink
        self.count = 0
        self._progress = progress

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self.count += len(data)
        if self._progress is not None:
            self._progress(len(data))
        return len(data)


class PrefetchReader(PullReader):
    """Run the upstream stages (producer read, raw hash, compression) in a thread.

    The encryptor pulls from this reader while a background thread keeps a
    bounded queue (``depth`` chunks of 1 MiB) filled. zstd, sha256 and the
    pipe reads release the GIL, so compression and encryption use both cores
    the way ``zstd | age`` does as two processes. Memory stays bounded by
    the queue depth.
    """

    def __init__(self, src: BinaryIO, depth: int = 4) -> None:
        import queue
        import threading

        self._src = src
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._buf = b""
        self._pos = 0
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seawall-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._src.read(CHUNK)
                if not chunk:
                    break
                self._q.put(chunk)
            self._q.put(None)
        except BaseException as exc:  # handed to the consumer thread
            self._q.put(exc)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        while self._pos >= len(self._buf) and not self._done:
            item = self._q.get()
            if item is None:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                raise item
            else:
                self._buf, self._pos = item, 0
        if self._pos == 0 and n >= len(self._buf):
            data, self._buf = self._buf, b""
            return data
        # Slice by offset: re-slicing the remainder would copy the whole chunk
        # at every small read (age pulls 64 KiB at a time).
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def close(self) -> None:
        """Stop the thread (on an error downstream) without blocking forever."""
        import queue

        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._q.get(timeout=0.1)
        self._thread.join()


def _copy(src: BinaryIO | CountingReader | PrefetchReader, dst: Sink) -> None:
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return
        dst.write(chunk)


def store_stream(
    source: BinaryIO,
    storage: Storage,
    key: str,
    spec: PipelineSpec,
    *,
    before_commit: Callable[[], None] | None = None,
    progress: Progress | None = None,
    expected_raw_sha256: str | None = None,
    tap: Callable[[bytes], None] | None = None,
) -> StoreResult:
    """Stream ``source`` through compress/encrypt/hash into ``key`` atomically.

    ``before_commit`` runs after the last byte and before the artifact is
    renamed into place: the producer's exit status is checked there, so a
    dump that died half-way never becomes a complete-looking artifact.
    ``expected_raw_sha256`` (needs ``spec.raw_hash``) refuses to commit when
    the source's bytes differ from a hash taken earlier (a file that changed
    under us must not be stored under a name derived from that hash).
    ``tap`` sees every raw chunk as it goes by (the logical backup reads its
    per-table checksums off the dump this way, without a second read).
    """
    counting = CountingReader(source, progress, hashing=spec.raw_hash, tap=tap)
    prefetching = False
    with storage.open_atomic_write(key) as fh:
        out = HashingWriter(fh)
        sink: HashingWriter | BackgroundWriter = BackgroundWriter(out) if spec.prefetch else out
        try:
            compressed: BinaryIO | PrefetchReader = compress_reader(
                counting,  # type: ignore[arg-type]
                spec.compression,
                spec.level,
                spec.threads,
                text_tuned=spec.text_tuned,
            )
            # With nothing to compress or hash, the prefetch thread would only
            # move chunks from one queue to the next (the producer's reads
            # release the GIL on their own).
            prefetching = spec.prefetch and (spec.compression != "none" or spec.raw_hash)
            if prefetching:
                compressed = prefetch = PrefetchReader(compressed)  # type: ignore[arg-type]
            mode = spec.encryption_mode
            if mode == "x25519":
                from seawall.pipeline.age_x25519 import RecipientError, encrypt_x25519_io

                assert spec.keys is not None
                try:
                    encrypt_x25519_io(compressed, sink, spec.keys.recipients)
                except RecipientError as exc:
                    raise ConfigError(
                        f"ENCRYPTION_RECIPIENTS: {exc}; `seawall keygen` prints a valid one"
                    ) from None
            elif mode == "scrypt":
                from seawall.pipeline.age_scrypt import encrypt_passphrase_io

                assert spec.keys is not None and spec.keys.passphrase is not None
                encrypt_passphrase_io(
                    compressed, sink, spec.keys.passphrase, work_factor=spec.scrypt_work_factor
                )
            else:
                _copy(compressed, sink)
            if isinstance(sink, BackgroundWriter):
                sink.close()
        except Exception as exc:
            if isinstance(sink, BackgroundWriter):
                with contextlib.suppress(BaseException):
                    sink.close()
            if prefetching:
                prefetch.close()
            if out.error is not None:
                from seawall.storage.base import storage_error

                raise storage_error(out.error, key) from exc
            raise
        if expected_raw_sha256 is not None:
            actual = counting.hash.hexdigest() if counting.hash is not None else None
            if actual != expected_raw_sha256:
                raise VerificationError(
                    f"{key}: the source changed while it was being stored (its sha256 "
                    "differs from the one taken before); nothing stored"
                )
        if before_commit is not None:
            before_commit()
    return StoreResult(
        raw_size=counting.count,
        stored_size=out.count,
        sha256=out.hash.hexdigest(),
        raw_sha256=counting.hexdigest() if counting.hash is not None else "",
        compression=spec.compression,
        encryption_mode=spec.encryption_mode,
        recipient_fingerprints=spec.keys.fingerprints() if spec.keys else [],
    )


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

    With ``expected_sha256`` the stored bytes are hashed first (``precheck``)
    and nothing reaches ``sink`` unless they match; ``compression=None`` and
    an unknown encryption mean "detect from the bytes" (foreign and legacy
    files). With ``expected_size`` (the manifest's ``stored_size``) the file's
    size is compared first: a truncated or grown artifact is named as such,
    before any byte is hashed or decoded.
    """

    def check(repo: Storage) -> None:
        if expected_size is not None:
            check_stored_size(repo, key, expected_size)
        if expected_sha256 and precheck:
            actual, _ = sha256_of(repo, key)
            if actual != expected_sha256:
                raise VerificationError(
                    f"{key}: sha256 mismatch (manifest {expected_sha256[:16]}…, file "
                    f"{actual[:16]}…): the stored file is corrupt or was modified; "
                    "restore from another backup"
                )

    # with MIRRORS: the first repository whose copy passes (primary first), named in the log
    storage = first_good_copy(storage, key, check)
    with storage.open_read(key) as raw:
        head = raw.read(256)
        reader = CountingReader(raw, prefix=head)
        encryption = sniff_encryption(head)
        if encryption == "openssl" and expected_sha256:
            # seawall never writes openssl-encrypted artifacts: an artifact with a
            # manifest whose raw bytes happen to start with "Salted__" is plain.
            encryption = None
        counting = CountingSink(sink, progress)
        dec = decompress_writer(counting, compression)
        try:
            try:
                _decrypt(reader, dec, encryption, keys, key, _size_of(raw))
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
                if reader.hexdigest() != expected_sha256:
                    raise VerificationError(
                        f"{key}: sha256 mismatch (the stored file is corrupt or was modified; "
                        f"decoding failed: {exc}); restore from another backup"
                    ) from exc
            raise
    digest = reader.hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise VerificationError(
            f"{key}: sha256 mismatch while reading (the file changed or is corrupt)"
        )
    detected = getattr(dec, "detected", None) or compression
    return DecodeResult(counting.count, reader.count, digest, detected, encryption)


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
        _copy(reader, dec)
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
