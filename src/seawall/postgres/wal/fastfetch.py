"""The lean ``wal-fetch``: one plain segment, in the configuration every server uses.

``restore_command`` runs once per 16 MiB segment, serially with replay, so
recovery is no faster than this command. The general path
(:func:`seawall.postgres.wal.fetch.fetch_wal`) imports the configuration
machinery, the storage layer and the streaming pipeline (~100 ms before the
first byte); this module handles the common case with :mod:`os`,
:mod:`hashlib`, :mod:`_thread`, zstandard's C backend and (for an encrypted
archive) cryptography's Rust extension and pyrage:

* ``%f`` is a segment name (24 hex digits) archived exactly once as
  ``<name>-<sha40>.zst`` or ``.zst.age`` (age X25519 only) in the local
  repository. The file is read whole (a compressed segment is a few MiB),
  decrypted with OpenSSL through :mod:`seawall.postgres.wal.fastage`
  (cryptography's Rust extension alone: ~5 ms to import against ~25 ms for
  ``cryptography.hazmat.primitives``, and 3x pyrage's speed), decompressed
  in one call, and its sha256 compared with the 40 hex digits the archive
  name carries (ADR 0001). pyrage is imported only to check that configured
  recipients or an ``ENCRYPTION_KEY`` parse, as ``KeyRing.build`` does
  (the documented restore_command wrapper sets neither).
* The result goes to a temporary beside ``%p`` while a second thread hashes
  it (sha256 releases the GIL), and is renamed to ``%p`` only when the hash
  matched: PostgreSQL never sees half a segment or an unchecked one. It is
  not fsynced here: PostgreSQL moves every file its restore_command
  delivered to its real name in pg_wal with ``durable_rename`` (PG 15
  ``XLogFileRead`` -> ``KeepFileRestoredFromArchive``), which fsyncs the
  file and the directory; a second fsync here cost 40-200 ms per 16 MiB on
  the bench machine for nothing (pgBackRest's synchronous archive-get does
  not sync either). Until then a crash loses only a file recovery will
  fetch again.
* A segment or history file that is not archived raises :class:`Missing`
  (a quiet exit 1: PostgreSQL probes for files that do not exist, and an
  idle standby does so every 5 seconds).

Everything else raises :class:`Fallback` *before* ``%p`` is touched: a
history file that exists, gzip or uncompressed files, a passphrase (scrypt)
or any configuration doubt, several versions of one name, a decryption,
decompression or hash failure. The general path then does the fetch from
scratch and is the one that explains a refusal, so the two paths cannot
disagree about what is refused or how loudly.

With read-ahead on (:mod:`seawall.postgres.wal.readahead`), a segment the
background reader already decoded and checked is taken from its spool with
one rename, after the archive listing confirmed it is still the archived
version of that name.
"""

from __future__ import annotations

import os

from seawall.postgres.wal.lean import (
    Fallback,
    parse_recipients,
    plain_cluster,
    versions,
    zstd_backend,
)
from seawall.walcore.header import MAX_SEGMENT_SIZE
from seawall.walcore.layout import (
    SHA_LEN,
    WAL_ROOT,
    is_history_name,
    is_segment_name,
    subdir,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from seawall.walcore.env import WalEnv

#: what an age file encrypted to X25519 recipients starts with
AGE_X25519_HEAD = b"age-encryption.org/v1\n-> X25519 "
_LEAN_SUFFIXES = (".zst", ".zst.age")
SECRET_PREFIX = "AGE-SECRET-KEY-1"


class Missing(Exception):
    """The file is not in the archive: a quiet exit 1 (PostgreSQL probes for such files)."""


class Options:
    """What the lean fetch needs from the configuration."""

    __slots__ = ("archive", "identities", "raw")

    def __init__(self, raw: WalEnv, archive: str, identities: list[str]) -> None:
        self.raw = raw
        self.archive = archive
        self.identities = identities


def _identity_lines(text: str) -> list[str]:
    """``keys.parse_identities`` without its error: Fallback."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.upper().startswith(SECRET_PREFIX):
            raise Fallback("not an age identity")
        out.append(line)
    return out


def options(env: Mapping[str, str] | None = None) -> Options:
    """The archive directory and identities, or Fallback on any doubt.

    The general path refuses some configurations before it looks at the
    archive (``envconfig.config_from``): ENCRYPTION on without a key, a
    recipient or identity that does not parse, an unreadable key file. Each
    of those falls back here, so the general path says it.
    """
    from seawall.walcore.env import WalEnvError, read_wal_env

    try:
        raw = read_wal_env(env)
    except WalEnvError as exc:
        raise Fallback(str(exc)) from exc
    if raw.encryption and not (raw.recipients or raw.recipients_file or raw.key):
        raise Fallback("ENCRYPTION without a key")
    key = (raw.key or "").strip()
    if key and not key.upper().startswith(SECRET_PREFIX):
        raise Fallback("a passphrase (age scrypt)")
    recipients: list[str] = []
    for item in raw.recipients:
        recipients.extend(parse_recipients(item))
    identities: list[str] = []
    try:
        if raw.recipients_file:
            with open(raw.recipients_file, encoding="utf-8") as fh:
                recipients.extend(parse_recipients(fh.read()))
        if raw.identity:
            identities.extend(_identity_lines(raw.identity))
        for path in raw.identity_files:
            with open(path, encoding="utf-8") as fh:
                identities.extend(_identity_lines(fh.read()))
    except OSError as exc:
        raise Fallback("a key file is unreadable") from exc
    if recipients or key:
        # what KeyRing.build parses fully: recipients (Bech32) and ENCRYPTION_KEY
        # (pyrage); identity lines it checks by prefix only, as _identity_lines
        from pyrage import x25519

        try:
            for r in recipients:
                x25519.Recipient.from_str(r)
            if key:
                x25519.Identity.from_str(key)
        except Exception as exc:
            raise Fallback("a key does not parse") from exc
    if key:
        identities.append(key)
    cluster = raw.cluster
    if not plain_cluster(cluster):
        raise Fallback("cluster name needs encoding")
    # BACKUP_DIR is judged by the caller, not here: fetch() takes an absolute
    # path only, postgres/wal/s3fetch.py (which shares these options) an s3:// URL
    archive = f"{raw.backup_dir}/{WAL_ROOT}/{cluster}"
    return Options(raw, archive, list(dict.fromkeys(identities)))


def archived(archive: str, name: str) -> str:
    """The one archived file of segment or history file ``name`` (its path).

    Missing when there is none; Fallback when the listing fails for another
    reason or there are several versions (the general path names them).
    """
    if is_segment_name(name) or is_history_name(name):
        directory = f"{archive}/{subdir(name)}"
    else:
        raise Fallback("not a segment or history file name")
    try:
        found = versions(directory, name)  # the same rule as wal-push's
    except FileNotFoundError:  # as existing_versions: no directory, no version
        if not os.path.isdir(archive):
            # no archive at all (a repository that is not mounted, a wrong
            # BACKUP_DIR): the general path says so loudly (exit 7) instead of
            # a quiet "not archived" that would end a recovery early
            raise Fallback("no WAL archive") from None
        raise Missing(name) from None
    except OSError as exc:
        raise Fallback(f"cannot list {directory}") from exc
    if not found:
        raise Missing(name)
    if len(found) > 1:
        raise Fallback("archived more than once")
    return f"{directory}/{found[0]}"


def decode(path: str, identities: list[str]) -> tuple[bytes, str]:
    """(raw content, sha256 prefix it must have) of archived file ``path``; Fallback if not lean."""
    base = path.rsplit("/", 1)[-1]
    _lean_name(base)
    try:
        with open(path, "rb", buffering=0) as fh:
            data = fh.read(MAX_SEGMENT_SIZE + 1)
    except OSError as exc:
        raise Fallback(f"cannot read {path}") from exc
    return decode_bytes(data, base, identities)


def _lean_name(base: str, history_ok: bool = False) -> tuple[str, str]:
    """(sha256 prefix, suffix) of an archived file name the lean path decodes, or Fallback."""
    name, _, rest = base.partition("-")
    sha, suffix = rest[:SHA_LEN], rest[SHA_LEN:]
    history = history_ok and is_history_name(name)
    if not (is_segment_name(name) or history) or suffix not in _LEAN_SUFFIXES:
        raise Fallback("not a zstd segment")
    return sha, suffix


def decode_bytes(
    data: bytes, base: str, identities: list[str], *, history_ok: bool = False
) -> tuple[bytes, str]:
    """:func:`decode` of the bytes of archived file ``base`` (read already, e.g. from S3).

    ``history_ok``: a timeline history file is decoded too (the S3 fetch,
    which has no general path to hand it to in every build).
    """
    sha, suffix = _lean_name(base, history_ok)
    if suffix.endswith(".age"):
        # only X25519 stanzas (an scrypt stanza must be alone: it would be first)
        if not identities or not data.startswith(AGE_X25519_HEAD):
            raise Fallback("not an age X25519 file, or no identity")
        from seawall.postgres.wal.fastage import Undecodable, decrypt, identity_bytes

        try:
            data = decrypt(data, [identity_bytes(i) for i in identities])
        except Undecodable as exc:  # wrong key, corrupt: the general path says which
            raise Fallback(f"decryption: {exc}") from exc
    zstd = zstd_backend()
    try:
        size = zstd.frame_content_size(data)
        if 0 < size <= MAX_SEGMENT_SIZE:
            raw = zstd.ZstdDecompressor().decompress(data)
        else:  # no content size in the frame header: stream it
            raw = zstd.ZstdDecompressor().decompressobj().decompress(data)
    except Exception as exc:  # ZstdError: corrupt; the general path says so
        raise Fallback("decompression failed") from exc
    return raw, sha


class _Hasher:
    """sha256 of ``data`` in a second thread (hashlib releases the GIL)."""

    def __init__(self, data: bytes) -> None:
        import _thread

        self.data = data
        self.hexdigest = ""
        self.done = _thread.allocate_lock()
        self.done.acquire()
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            import hashlib

            self.hexdigest = hashlib.sha256(self.data).hexdigest()
        finally:
            self.done.release()

    def result(self) -> str:
        self.done.acquire()
        self.done.release()
        return self.hexdigest


def write_checked(raw: bytes, sha: str, dest: str, dir_fd: int | None = None) -> None:
    """Write ``raw`` to ``dest`` (atomically) if its sha256 starts with ``sha``.

    The temporary (``.<dest>.seawall-<pid>``, a name PostgreSQL never asks
    for) is written while another thread hashes ``raw`` (no fsync: see the
    module docstring);
    it is renamed to ``dest`` only when the hash matched, else removed and
    Fallback raised. OSError: ``dest`` could not be written (nothing left).
    ``dir_fd``: ``dest`` is a name in that directory (the read-ahead spool).
    """
    hasher = _Hasher(raw)
    head, _, base = dest.rpartition("/")
    tmp = f"{head}/.{base}.seawall-{os.getpid()}" if head else f".{base}.seawall-{os.getpid()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    renamed = False
    try:
        fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if hasher.result()[:SHA_LEN] != sha:
            raise Fallback("content does not match the sha256 in its name")
        os.rename(tmp, dest, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        renamed = True
    finally:
        hasher.result()  # never leave the thread reading freed memory
        if not renamed:
            try:  # noqa: SIM105 - contextlib would be one more import on the hot path
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass


def fetch(name: str, dest: str, env: Mapping[str, str] | None = None) -> str:
    """Restore WAL file ``name`` into ``dest``; returns the archived file's path.

    Raises :class:`Missing` (not archived: quiet exit 1), :class:`Fallback`
    (the general path must do it; ``dest`` untouched). With read-ahead on
    (``WAL_READ_AHEAD`` > 0) and ``name`` a segment, the spool's checked
    copy of the archived version is taken if there is one, and the reader
    is told (started if needed) to decode the segments after ``name``.
    """
    opts = options(env)
    if not opts.raw.backup_dir.startswith("/"):  # s3://… has its own lean path
        raise Fallback("BACKUP_DIR is not an absolute path")
    path = archived(opts.archive, name)
    spool = None
    if opts.raw.read_ahead > 0 and is_segment_name(name):
        from seawall.postgres.wal.readahead import Spool

        spool = Spool.open(dest)
    try:
        alive = spool is not None and spool.reader_alive()
        if spool is not None:
            # first: the reader keeps N's copy and works on N+1 on, rather
            # than decode N again in the moment between the take and the request
            spool.request(name)
        if not (alive and spool is not None and spool.take(path, dest)):
            raw, sha = decode(path, opts.identities)
            try:
                write_checked(raw, sha, dest)
            except OSError as exc:  # the general path reports it with its message
                raise Fallback(f"cannot write {dest}") from exc
        if spool is not None and not alive:
            spool.start_reader()
    finally:
        if spool is not None:
            spool.close()
    return path
