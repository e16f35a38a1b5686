"""Store a stream as an artifact: producer → count (raw size) → compress →
encrypt → sha256 → atomic write.

The write side is pull-based: the encryptor pulls compressed bytes, which
pull from the producer (the I/O adapters that count, hash and overlap the
stages are in :mod:`seawall.pipeline.adapters`). Nothing is committed under
its name until the last byte is written and the producer said it succeeded
(``before_commit``). The read side is :mod:`seawall.pipeline.decode`.

This module has no pydantic and no settings imports on purpose: ``wal-push``
uses it and must start fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from seawall.errors import ConfigError, VerificationError
from seawall.pipeline.adapters import (
    BackgroundWriter,
    CountingReader,
    HashingWriter,
    PrefetchReader,
    Progress,
    copy_stream,
)
from seawall.pipeline.codecs import compress_reader
from seawall.pipeline.keys import KeyRing
from seawall.storage.base import Storage


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
                copy_stream(compressed, sink)
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
