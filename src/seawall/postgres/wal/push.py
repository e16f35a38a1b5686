"""``wal-push``: store one file PostgreSQL hands to archive_command.

This is the general path: every kind of WAL file, every configuration, and
every refusal with its message. The common case (a complete segment, zstd,
age recipients, an archive that exists) is done first by the lean
:mod:`seawall.postgres.wal.fastpush`, which hands anything else to
:func:`push_wal` before committing anything; both follow the same rules.

Order of events, and why:

1. Hash the raw file and read the segment header (first pass). The archive
   key carries the raw sha256, so it must be known before writing; the
   header says which cluster the segment belongs to.
2. Compare with ``archive.json`` (system identifier, segment size): a foreign
   segment is refused.
3. Claim the WAL name (:func:`seawall.postgres.wal.claim.claim`, the
   same per-name ``flock`` as the lean path, so the two paths exclude each
   other too) and hold it until the file is renamed into place: the look
   for an existing version and the commit are one atomic step, so of two
   pushes of one name with different content started together exactly one
   stores its version (ADR 0008).
4. Under the claim, look for the same WAL name in its directory: same hash
   means PostgreSQL is retrying a push that already succeeded (a crash after
   our fsync, before it recorded the success): fsync that file and its
   directory again (the crashed push may not have reached its directory
   fsync), report success. A different hash is refused and nothing is
   overwritten.
5. Still under the claim, with ``MIRRORS``, record that each mirror lacks
   the key (``mirrors/<id>/pending/<key>``, the caller's ``intend``): before
   the commit, so a ``kill -9`` between the commit and the mirror copies
   still leaves the lag recorded for ``seawall sync``.
6. Stream the file through compress/encrypt into a
   temporary name, fsync, rename, fsync the directory
   (``open_atomic_write``), and only then return success. The second read of
   the file is checked against the first hash before the rename, so a file
   that changed under us is never archived under the wrong name.

A ``kill -9`` at any moment leaves at most a temporary file (or the name's
claim file, whose lock died with the process) that listing ignores
(``prune`` removes stale ones); PostgreSQL retries and the retry stores the
segment normally.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from seawall.catalog.locks import leased_lock
from seawall.catalog.wal_layout import existing_versions, wal_dir, wal_key, wal_prefix
from seawall.errors import ConfigError, NotFoundError, RefusedError, VerificationError
from seawall.pipeline.codecs import CHUNK
from seawall.pipeline.store import PipelineSpec, store_stream
from seawall.postgres.wal.archive_info import read_archive_info, write_archive_info
from seawall.postgres.wal.claim import claim, release
from seawall.postgres.wal.envconfig import WalConfig
from seawall.storage.base import LocalVolume, Storage, storage_error
from seawall.storage.repository import ensure_storage
from seawall.storage.volume import DIR_MODE, fsync_dir
from seawall.walcore.archive_info import ArchiveInfo
from seawall.walcore.archived import parse_wal_key
from seawall.walcore.header import LONG_HEADER_SIZE, SegmentHeaderError, read_header
from seawall.walcore.layout import SHA_LEN, WAL_ZSTD_LEVEL
from seawall.walcore.names import parse_wal_name

#: seconds a push waits for another push of the same name (object storage claims)
CLAIM_WAIT = 60.0
#: Segments up to this size are encoded in memory in one shot; larger ones stream.
ONE_SHOT_MAX = 64 * 1024 * 1024


@dataclass(frozen=True)
class PushResult:
    name: str
    key: str
    duplicate: bool
    raw_size: int
    stored_size: int


def _hash_file(path: Path) -> tuple[str, bytes, int]:
    """sha256, the first bytes (header) and size of ``path``."""
    h = hashlib.sha256()
    size = 0
    head = b""
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK * 4):
                if not head:
                    head = chunk[:LONG_HEADER_SIZE]
                h.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise NotFoundError(f"wal-push: {path} does not exist; archive_command passes %p") from None
    except OSError as exc:
        raise ConfigError(f"wal-push: cannot read {path}: {exc.strerror}") from exc
    return h.hexdigest(), head, size


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_small(path: Path) -> bytes | None:
    """The whole file if it is at most ONE_SHOT_MAX bytes (a 16 MiB segment), else None."""
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > ONE_SHOT_MAX:
                return None
            return fh.read()
    except FileNotFoundError:
        raise NotFoundError(f"wal-push: {path} does not exist; archive_command passes %p") from None
    except OSError as exc:
        raise ConfigError(f"wal-push: cannot read {path}: {exc.strerror}") from exc


def _ensure_dir(vol: LocalVolume, prefix: str) -> None:
    """Create a directory of the archive durably (its entry fsynced in the parent)."""
    path = vol.path(prefix)
    if path.is_dir():
        return
    missing = []
    cur = path
    while not cur.is_dir():
        missing.append(cur)
        cur = cur.parent
    try:
        for d in reversed(missing):
            d.mkdir(mode=DIR_MODE, exist_ok=True)  # private whatever the umask
            fsync_dir(d.parent)
    except OSError as exc:
        raise storage_error(exc, prefix) from exc


def _check_identity(storage: Storage, cfg: WalConfig, name: str, head: bytes, size: int) -> None:
    """Refuse a segment of another cluster; record the identity on first push."""
    try:
        header = read_header(head)
    except SegmentHeaderError as exc:
        raise RefusedError(
            f"wal-push: {name} is not a WAL segment ({exc}); nothing archived"
        ) from exc
    wal = parse_wal_name(name, header.segment_size)
    if wal.segno is not None and header.pageaddr != wal.segno * header.segment_size:
        raise RefusedError(
            f"wal-push: {name}: its header says it starts at "
            f"{header.pageaddr >> 32:X}/{header.pageaddr & 0xFFFFFFFF:X}, which is not that "
            "segment's position; the file is corrupt or renamed; nothing archived"
        )
    if wal.kind == "segment" and size != header.segment_size:
        raise RefusedError(
            f"wal-push: {name} is {size} bytes but the segment size is {header.segment_size}; "
            "nothing archived"
        )
    info = read_archive_info(storage, cfg.cluster)
    sysid = str(header.system_identifier)
    if info is None:
        vol = storage.local_volume()
        if vol is not None:
            _ensure_dir(vol, wal_prefix(cfg.cluster))
        write_archive_info(storage, ArchiveInfo(sysid, header.segment_size, cfg.cluster))
        return
    if info.system_identifier != sysid:
        raise RefusedError(
            f"wal-push: {name} belongs to the cluster with system identifier {sysid}, but the "
            f"archive {wal_prefix(cfg.cluster)} holds cluster {info.system_identifier}; set "
            "PG_CLUSTER_NAME to a distinct name for each cluster; nothing archived"
        )
    if info.wal_segment_size != header.segment_size:
        raise RefusedError(
            f"wal-push: {name} has segment size {header.segment_size} but the archive was made "
            f"with {info.wal_segment_size}; nothing archived"
        )


def _fsync_existing(storage: Storage, key: str) -> None:
    """Make an already archived file durable (file and directory entry).

    Only a local volume needs it: an object store's PUT answered only once
    the object was durable, so an object that is listed is.
    """
    vol = storage.local_volume()
    if vol is None:
        return
    path = vol.path(key)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(path.parent)
    except OSError as exc:
        raise storage_error(exc, key) from exc


#: ``intend(key)`` records, before the commit of ``key``, that each mirror lacks it
#: (``MirroredStorage.intend``); it returns the undo for a push that commits nothing
Intend = Callable[[str], Callable[[], None]]


def push_wal(cfg: WalConfig, path: Path, intend: Intend | None = None) -> PushResult:
    """Archive ``path``; returns once the stored file is durable.

    ``intend``: with ``MIRRORS``, called under the claim once the push knows it
    will store ``key`` and before it does, so a process killed between the
    commit and the mirror copies (the caller's) leaves the mirror's lag
    recorded; undone when the store fails. A duplicate never calls it.
    """
    name = path.name
    try:
        wal = parse_wal_name(name)
    except ValueError:
        # exit 9 like a WAL-named file whose content is not a segment: "this is
        # not a WAL file" is one refusal whichever check sees it first
        raise RefusedError(
            f"wal-push: {name!r} is not a WAL file name (segment, .partial, .backup or "
            ".history); nothing archived; archive_command must pass %p"
        ) from None
    storage = cfg.storage
    ensure_storage(storage)  # never a whole path on an unmounted volume
    spec = _wal_spec(cfg)
    data = _read_small(path)
    encoder: _Encoder | None = None
    try:
        if data is not None:
            if spec.encryption_mode != "scrypt":
                # Compress and encrypt in a thread while this one hashes and checks:
                # zstd and sha256 release the GIL, so the two overlap.
                encoder = _Encoder(data, spec)
            raw_sha, head, size = _sha256_hex(data), data[:LONG_HEADER_SIZE], len(data)
        else:
            raw_sha, head, size = _hash_file(path)
        if wal.kind in ("segment", "partial"):
            _check_identity(storage, cfg, name, head, size)
        with _claimed(storage, cfg.cluster, name):
            return _push_claimed(cfg, storage, spec, path, encoder, raw_sha, size, intend)
    finally:
        if encoder is not None:
            # A refusal (or any error) must not leave the encoder running: see _Encoder.
            encoder.join()


@contextmanager
def _claimed(storage: Storage, cluster: str, name: str) -> Iterator[None]:
    """Hold the claim on WAL name ``name`` (ADR 0008).

    On a local volume the lean path's flock claim in the name's directory
    (so the two paths exclude each other). Without one (object storage) the
    backend's lease on ``.locks/wal/<cluster>/<name>`` (ADR 0012): of two
    pushes of one name only the holder looks for a version and stores one;
    a holder killed -9 leaves a lease that runs out, and PostgreSQL retries.
    """
    vol = storage.local_volume()
    if vol is None:
        with leased_lock(storage, f"wal/{cluster}/{name}", timeout=CLAIM_WAIT, command="wal-push"):
            yield
        return
    _ensure_dir(vol, wal_dir(cluster, name))
    directory = str(vol.path(wal_dir(cluster, name)))
    try:
        lock = claim(directory, name)
    except OSError as exc:
        raise storage_error(exc, wal_dir(cluster, name)) from exc
    try:
        yield
    finally:
        release(lock, directory, name)


def _push_claimed(
    cfg: WalConfig,
    storage: Storage,
    spec: PipelineSpec,
    path: Path,
    encoder: _Encoder | None,
    raw_sha: str,
    size: int,
    intend: Intend | None = None,
) -> PushResult:
    """The check for an existing version and the commit, under the name's claim."""
    name = path.name
    for key in existing_versions(storage, cfg.cluster, name):
        obj = parse_wal_key(key)
        assert obj is not None
        if obj.sha256_prefix == raw_sha[:SHA_LEN]:
            # the push that stored it may have died before its directory fsync
            _fsync_existing(storage, key)
            return PushResult(name, key, True, size, storage.stat(key).size)
        raise RefusedError(
            f"wal-push: {name} is already archived with different content "
            f"(archived sha256 {obj.sha256_prefix[:12]}…, this file {raw_sha[:12]}…); "
            "refusing to overwrite it. Two clusters may share one archive (set "
            "PG_CLUSTER_NAME per cluster), or the archive holds WAL of an old incarnation "
            "of this cluster: investigate before removing either copy"
        )

    if spec.encryption_mode == "scrypt":
        sys.stderr.write(
            "seawall: warning: ENCRYPTION_KEY is a passphrase (age scrypt mode, ~1.5 s per "
            "WAL segment); archiving may fall behind: use ENCRYPTION_RECIPIENTS (age public "
            "keys, `seawall keygen`)\n"
        )
    key = wal_key(cfg.cluster, name, raw_sha, spec.suffix())
    with _intended(intend, key):
        if encoder is not None:
            stored = _store_one_shot(storage, key, encoder.result())
            return PushResult(name, key, False, size, stored)
        with open(path, "rb") as src:
            try:
                result = store_stream(src, storage, key, spec, expected_raw_sha256=raw_sha)
            except VerificationError as exc:
                raise VerificationError(
                    f"wal-push: {name} changed while it was being archived; nothing archived "
                    "(PostgreSQL will retry)"
                ) from exc
    return PushResult(name, key, False, result.raw_size, result.stored_size)


@contextmanager
def _intended(intend: Intend | None, key: str) -> Iterator[None]:
    """Around the commit of ``key``: the mirrors' intent records first (``intend``),
    removed again when the commit fails (nothing new for a mirror to miss)."""
    undo = intend(key) if intend is not None else None
    try:
        yield
    except BaseException:
        if undo is not None:
            undo()
        raise


def _wal_spec(cfg: WalConfig) -> PipelineSpec:
    spec = cfg.spec()
    if cfg.compression_level is None and spec.compression == "zstd":
        # WAL compresses about as well at level 1 as at 3, at a third of the CPU
        # time, and archive_command latency is what keeps pg_wal from filling up
        spec = dataclasses.replace(spec, level=WAL_ZSTD_LEVEL)
    return spec


class _Encoder:
    """Compress + encrypt a segment in a background thread (see push_wal).

    :func:`push_wal` joins it on every way out, refusals included, and it is
    not a daemon thread: a thread still running when the interpreter
    finalizes is ended by CPython 3.11 with ``pthread_exit`` as soon as it
    wants the GIL back, and the forced unwind through pyrage's Rust frames
    (its module init, the first time it is imported here) runs Rust drops
    on a dying interpreter or meets a frame that may not unwind: SIGSEGV or
    "FATAL: exception not rethrown" (SIGABRT) *after* the refusal was
    printed, so PostgreSQL saw a crash instead of exit 9
    (tests/integration/wal/test_wal_push_exit_threads.py).
    """

    def __init__(self, data: bytes, spec: PipelineSpec) -> None:
        import threading

        self._data = data
        self._spec = spec
        self._blob: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seawall-wal-encode")
        self._thread.start()

    def join(self) -> None:
        """Wait until the thread has left zstd and pyrage (it cannot be cancelled)."""
        self._thread.join()

    def _run(self) -> None:
        try:
            self._blob = _encode(self._data, self._spec)
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def result(self) -> bytes:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._blob is not None
        return self._blob


def _encode(data: bytes, spec: PipelineSpec) -> bytes:
    blob = compress_bytes(data, spec)
    if spec.encryption_mode == "x25519":
        import pyrage
        from pyrage import x25519

        assert spec.keys is not None
        blob = pyrage.encrypt(blob, [x25519.Recipient.from_str(r) for r in spec.keys.recipients])
    return blob


def _store_one_shot(storage: Storage, key: str, blob: bytes) -> int:
    """Write a segment compressed and encrypted in memory (by _Encoder), atomically.

    Same formats as :func:`store_stream` (one zstd frame, one age file), but
    without its per-chunk Python loop and its second and third sha256 passes
    over the raw bytes: for a 16 MiB segment that is most of the CPU time.
    The bytes compressed are the bytes hashed (read once), so a file changing
    under us cannot be archived under the wrong name.
    """
    with storage.open_atomic_write(key) as fh:
        fh.write(blob)
    return len(blob)


def compress_bytes(data: bytes, spec: PipelineSpec) -> bytes:
    if spec.compression == "zstd":
        import zstandard

        level = spec.level if spec.level is not None else 3
        # 16 MiB in 2 jobs: libzstd threads halve the latency of archive_command.
        cctx = zstandard.ZstdCompressor(
            level=level, threads=spec.threads or -1, write_checksum=True
        )
        return cctx.compress(data)
    if spec.compression == "gzip":
        import gzip

        return gzip.compress(
            data, compresslevel=spec.level if spec.level is not None else 6, mtime=0
        )
    return data
