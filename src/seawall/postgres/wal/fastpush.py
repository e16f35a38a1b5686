"""The lean ``wal-push``: one WAL segment, in the configuration every server uses.

archive_command starts one process per 16 MiB segment, so the push is
mostly fixed costs: the interpreter, the imports, and passes over 16 MiB.
This module handles the common case, a complete segment (``%f`` is 24 hex
digits) pushed with zstd and age X25519 recipients (or unencrypted) into an
archive that already exists, with nothing but :mod:`os`, :mod:`hashlib`,
:mod:`_thread`, the zstandard C backend and pyrage. Everything else (the
first push, which creates ``archive.json``; a new timeline directory;
``.history``/``.backup``/``.partial`` files; gzip; passphrase encryption; a
conflict; any error before the archived file is committed) raises
:class:`Fallback` and :func:`seawall.postgres.wal.push.push_wal` does it from
scratch with its full checks and messages. The lean path never *refuses*
anything itself, so the two cannot disagree about what is refused.

Why each step is as it is (measured on the 2-core bench machine; the details
are in the module notes of the benchmark and issue 4's report):

* One pass over the segment hashes, compresses and encrypts it at once,
  in reused 256 KiB buffers and three threads (:mod:`.leanstream`).
* ``zstandard/__init__.py`` imports ``platform`` and ``typing`` (~5 ms, more
  than the rest of the push's imports together) only to choose a backend;
  :func:`seawall.postgres.wal.lean.zstd_backend` loads the C backend
  directly and falls back to the package import.
* Durability is the minimum that is still complete: the temporary file is
  ``fdatasync``-ed, renamed to its final name (which carries the sha256, so
  it can only be chosen once the hash is complete), and the directory is
  ``fsync``-ed; only then does the caller report success. A ``kill -9`` at
  any point leaves at most a ``.partial-`` temporary that listings ignore.
* An identical segment already archived (PostgreSQL retrying after a crash
  between our rename and its own bookkeeping) is fsynced again, file and
  directory, before it counts as success: the crashed push may have died
  before its directory fsync.
* Deciding that the name is free and renaming into it is one atomic step
  under the name's claim (:mod:`seawall.postgres.wal.claim`, ADR 0008),
  taken only around the re-check and the rename.
* The names, the layout and the header rules are :mod:`seawall.walcore`'s,
  the options come from its one light reader (:mod:`seawall.walcore.env`).
"""

from __future__ import annotations

import os

from seawall.postgres.wal.claim import claim, release
from seawall.postgres.wal.lean import (
    Fallback,
    parse_recipients,
    plain_cluster,
    unlink_quietly,
    versions,
    zstd_backend,
    zstd_workers,
)
from seawall.postgres.wal.leanstream import Compressor, Sink, hash_and_compress
from seawall.walcore.header import (
    LONG_HEADER_SIZE,
    MAX_SEGMENT_SIZE,
    SegmentHeaderError,
    read_header,
)
from seawall.walcore.layout import (
    ARCHIVE_INFO,
    PARTIAL_MARKER,
    SHA_LEN,
    WAL_ROOT,
    WAL_ZSTD_LEVEL,
    archived_name,
    info_field,
    is_segment_name,
    sha_of,
    subdir,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def _options(env: Mapping[str, str] | None) -> tuple[str, str, int | None, int, list[str]]:
    """(backup_dir, cluster, level, threads, recipients) or Fallback."""
    from seawall.walcore.env import WalEnvError, read_wal_env

    try:
        raw = read_wal_env(env)
    except WalEnvError as exc:
        raise Fallback(str(exc)) from exc
    # BACKUP_DIR is judged by the caller, not here: push() takes an absolute
    # path only, postgres/wal/s3push.py (which shares these options) an s3:// URL
    if raw.compression != "zstd":
        raise Fallback("compression is not zstd")
    recipients: list[str] = []
    if raw.encryption:
        for item in raw.recipients:
            recipients.extend(parse_recipients(item))
        if raw.recipients_file:
            try:
                with open(raw.recipients_file, encoding="utf-8") as fh:
                    recipients.extend(parse_recipients(fh.read()))
            except OSError as exc:
                raise Fallback("recipients file unreadable") from exc
        key = (raw.key or "").strip()
        if key.upper().startswith("AGE-SECRET-KEY-1"):
            from pyrage import x25519

            try:
                recipients.append(str(x25519.Identity.from_str(key).to_public()))
            except Exception as exc:
                raise Fallback("invalid identity") from exc
        elif key:  # a passphrase: beside recipients the general path refuses it
            raise Fallback("passphrase ENCRYPTION_KEY")
        if not recipients:  # no key, or a passphrase only (age scrypt mode)
            raise Fallback("no X25519 recipient")
        recipients = list(dict.fromkeys(recipients))
    cluster = raw.cluster
    if not plain_cluster(cluster):
        raise Fallback("cluster name needs encoding")
    # COMPRESSION_THREADS as configured; 0 (auto) is resolved where zstd is
    # set up (lean.zstd_workers)
    threads = raw.compression_threads
    return raw.backup_dir, cluster, raw.compression_level, threads, recipients


def _check_segment(name: str, head: bytes, size: int, archive: str) -> None:
    """Header against name, size and archive.json; Fallback on any doubt."""
    sysid, seg_size = check_header(name, head, size)
    try:
        with open(f"{archive}/{ARCHIVE_INFO}", encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:  # first push: the general path writes archive.json
        raise Fallback("no archive.json") from exc
    check_archive_info(text, sysid, seg_size)


def check_header(name: str, head: bytes, size: int, *, whole: bool = True) -> tuple[int, int]:
    """(system identifier, segment size) of a segment's long header; Fallback on any doubt.

    ``whole``: the file must be exactly one segment (False for a ``.partial``,
    which may be shorter but never longer). Shared with the S3 push.
    """
    try:
        header = read_header(head)  # the general path's checks, its message on refusal
    except SegmentHeaderError as exc:
        raise Fallback("header") from exc
    seg_size = header.segment_size
    if (whole and size != seg_size) or size > seg_size:
        raise Fallback("header")
    per_log = 0x1_0000_0000 // seg_size
    # name[16:24]: a ``.partial`` segment's name goes on after the 24 hex digits
    tli, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:24], 16)
    if tli == 0 or seg >= per_log or header.pageaddr != (log * per_log + seg) * seg_size:
        raise Fallback("page address")
    return header.system_identifier, seg_size


def check_archive_info(text: str, sysid: int, seg_size: int) -> None:
    """archive.json's identity against a segment's header; Fallback unless both match."""
    if info_field(text, "system_identifier") != str(sysid):
        raise Fallback("system identifier")
    if info_field(text, "wal_segment_size") != str(seg_size):
        raise Fallback("segment size")


class Archived:
    """Where :func:`push` archived a segment, for the caller's mirror copies.

    ``root``: the repository (``BACKUP_DIR``); ``key``: the archived file
    under it (``postgresql/wal/<cluster>/<subdir>/<name>``, the key every
    Storage names it by); ``committed``: this push renamed it into place
    (False: an identical copy was archived before, PostgreSQL retrying).
    A plain class: the lean path imports neither typing nor dataclasses.
    """

    __slots__ = ("committed", "key", "root")

    def __init__(self, root: str, key: str, committed: bool) -> None:
        self.root = root
        self.key = key
        self.committed = committed

    @property
    def name(self) -> str:
        """The archived file's name (``<segment>-<sha256 prefix><suffix>``)."""
        return self.key.rsplit("/", 1)[-1]


def _fsync_path(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def push(
    path: str, env: Mapping[str, str] | None = None, mirrors: Sequence[tuple[str, str]] = ()
) -> Archived:
    """Archive the segment at ``path``; returns where (:class:`Archived`).

    Returns only once that file and its directory entry are durable (also
    when an identical copy was already archived). Raises :class:`Fallback`
    when the general path must handle the push (nothing complete-looking
    written), and OSError when writing the archive failed (likewise).

    ``mirrors``: (id, location) of each ``MIRRORS`` entry. Before the commit
    each gets its intent record ``mirrors/<id>/pending/<key>`` in the
    primary (storage/mirror_layout.py), as ``MirroredStorage`` writes one
    before every write, so a push killed between the commit and the copies
    leaves the mirror's lag recorded; a push that commits nothing (a
    conflict, a fallback) removes the records it wrote, except when it finds
    this very key archived (a twin push committed it and may rely on those
    records: they stay, for the caller's copy step). The copies are the
    caller's (runner/wal_fast.py).
    """
    name = os.path.basename(path)
    if not is_segment_name(name):
        raise Fallback("not a plain segment")
    backup_dir, cluster, level, threads, recipients = _options(env)
    if not backup_dir.startswith("/"):  # s3://… has its own lean path; relative: refused
        raise Fallback("BACKUP_DIR is not an absolute path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise Fallback("cannot open the segment") from exc
    try:
        final_name, committed = _push_open(
            fd,
            name,
            f"{backup_dir}/{WAL_ROOT}/{cluster}",
            level,
            threads,
            recipients,
            (backup_dir, mirrors),
        )
    finally:
        os.close(fd)
    return Archived(backup_dir, f"{WAL_ROOT}/{cluster}/{subdir(name)}/{final_name}", committed)


def _push_open(
    fd: int,
    name: str,
    archive: str,
    level: int | None,
    threads: int,
    recipients: list[str],
    mirrored: tuple[str, Sequence[tuple[str, str]]] = ("", ()),
) -> tuple[str, bool]:
    """:func:`push` of the open segment ``fd``: (archived file name, renamed by this call).

    The compressed, encrypted stream is written to a ``.partial-`` temporary
    while the segment is still being hashed and is fdatasync-ed; then, under
    the name's :func:`claim`, the archived versions of the name decide: an
    identical copy already archived (the temporary is dropped), a conflict
    (dropped, Fallback), or none (rename to the final name, which carries
    the hash; after the claim, the fsync of the directory).
    """
    directory = f"{archive}/{subdir(name)}"
    try:
        size = os.fstat(fd).st_size
        if size > MAX_SEGMENT_SIZE:  # the lean path streams, but no segment is larger
            raise Fallback("too large")
        _check_segment(name, os.pread(fd, LONG_HEADER_SIZE, 0), size, archive)
        if not os.path.isdir(directory):  # the general path creates it durably
            raise Fallback("no directory")
        cctx = zstd_backend().ZstdCompressor(
            level=WAL_ZSTD_LEVEL if level is None else level,
            threads=zstd_workers(threads),
            write_checksum=True,
        )
        suffix = ".zst.age" if recipients else ".zst"
        # <segment><suffix>.partial-<8 hex>: storage.base.is_partial_name, so
        # listings skip it and prune removes it if we are killed
        tmp = f"{directory}/{name}{suffix}{PARTIAL_MARKER}{os.urandom(4).hex()}"
        # 0600: the repository is private whatever the umask (design.md invariant 11)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except Fallback:
        raise
    except Exception as exc:  # unreadable, no temporary, zstd refuses the options
        raise Fallback(f"{type(exc).__name__}: {exc}") from exc
    committed = False
    sink: Sink | None = None
    root, mirrors = mirrored
    records: list[str] = []  # intent records this push wrote (removed unless committed)
    try:
        sink = Sink(out, Compressor(cctx, size), recipients)
        try:
            sha = hash_and_compress(fd, size, sink.source)
        except OSError as exc:
            raise Fallback(f"cannot read the segment: {exc}") from exc
        sink.wait()  # OSError here: the archive could not be written
        # made durable before the claim, to keep its critical section short (a
        # retried duplicate, rare, pays one needless fdatasync for that)
        os.fdatasync(out)
        if mirrors:  # before the commit, outside the claim (a few small fsyncs)
            key = f"{directory[len(root) + 1 :]}/{archived_name(name, sha, suffix)}"
            records = _intend(root, key, mirrors)
        lock = claim(directory, name)
        try:
            try:
                existing = versions(directory, name)
            except OSError as exc:
                raise Fallback(f"cannot list {directory}: {exc}") from exc
            if not existing:
                final_name = archived_name(name, sha, suffix)
                os.rename(tmp, f"{directory}/{final_name}")
                committed = True
        finally:
            release(lock, directory, name)
        if existing:
            if any(sha_of(e, name) != sha[:SHA_LEN] for e in existing):
                raise Fallback("conflict")  # the general path refuses it, with the details
            # PostgreSQL retrying a push that stored it: make sure that one is durable
            _fsync_path(f"{directory}/{existing[0]}")
            _fsync_path(directory, os.O_RDONLY | os.O_DIRECTORY)
            # the records this push wrote stay: the twin that committed this very key
            # may have found them and written none, and its copy step looks for them
            # (ADR 0017: the asynchronous pusher and PostgreSQL push one segment at
            # once); the caller's copy step copies and removes them
            records = []
            return existing[0], False
    finally:
        if sink is not None:
            sink.join()  # never close the file under the writing thread
        os.close(out)
        if not committed:
            unlink_quietly(tmp)
            for rkey in records:  # nothing committed (a conflict, an error): nothing to miss
                unlink_quietly(f"{root}/{rkey}")
    _fsync_path(directory, os.O_RDONLY | os.O_DIRECTORY)
    return final_name, True


def _intend(root: str, key: str, mirrors: Sequence[tuple[str, str]]) -> list[str]:
    """The pending records of ``key`` for each mirror (``MirroredStorage._intent``'s files);
    the keys of those this call wrote. Fallback when one cannot be written."""
    from seawall.storage.mirror_layout import pending_prefix, record, write_local_record

    written: list[str] = []
    for mid, location in mirrors:
        rkey = f"{pending_prefix(mid)}/{key}"
        try:
            if write_local_record(root, rkey, record(key, location, "copy")):
                written.append(rkey)
        except OSError as exc:
            for done in written:
                unlink_quietly(f"{root}/{done}")
            raise Fallback(f"cannot write the mirror record {rkey}: {exc}") from exc
    return written
