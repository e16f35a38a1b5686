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

* The segment is read in 256 KiB chunks into a few reused buffers (~2 ms
  for 16 MiB) instead of one 16 MiB ``read()`` (~7 ms, almost all page
  faults of the fresh buffer). Each chunk is hashed in this thread while a
  second thread compresses the *same* buffer (sha256 and zstd both release
  the GIL), so the bytes that are compressed are exactly the bytes that are
  hashed, even if the file were to change under us. A third, mostly idle
  thread encrypts zstd's output as it comes (``pyrage.encrypt_io``) straight
  into the temporary file: no multi-MiB intermediate copies, whose page
  faults cost more than the encryption, and the file is written by the time
  compression ends.
* ``zstandard/__init__.py`` imports ``platform`` and ``typing`` (~5 ms, more
  than the rest of the push's imports together) only to choose a backend;
  :func:`zstd_backend` loads the C backend directly and falls back to the
  package import.
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
  (:func:`claim`): two pushes of one name with different content, started
  together (a primary and a standby with ``archive_mode=always``), would
  otherwise both see no version, both rename, and both exit 0 (ADR 0008).
  The claim is taken only around the re-check and the rename, after the
  expensive part (hash, compress, encrypt, fdatasync), so it costs a
  create, an ``flock`` and an unlink per push.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

#: zstd level for WAL when COMPRESSION_LEVEL is not set.
WAL_ZSTD_LEVEL = 1
#: PostgreSQL's largest WAL segment size (the lean path streams, any size fits).
MAX_SIZE = 1 << 30
#: ``seawall.storage.base.PARTIAL_MARKER`` (a unit test keeps them equal).
PARTIAL_MARKER = ".partial-"
#: ``seawall.catalog.wal_layout.WAL_ROOT`` / ``SHA_LEN`` / ``ARCHIVE_INFO``.
WAL_ROOT = "postgresql/wal"
SHA_LEN = 40
ARCHIVE_INFO = "archive.json"
#: ``<walname><CLAIM_SUFFIX>`` is the per-name lock file (:func:`claim`;
#: ``seawall.catalog.wal_layout.CLAIM_SUFFIX``, a unit test keeps them equal). It ends
#: like a temporary (``storage.base.is_partial_name``): listings skip it, and
#: one left behind by a kill -9 is reused by the next push or removed by prune.
CLAIM_SUFFIX = ".claim" + PARTIAL_MARKER + "00000000"

CHUNK = 256 * 1024
_NBUF = 4
_LONG_HEADER_SIZE = 40
_XLP_LONG_HEADER = 0x0002
_UPPER_HEX = frozenset("0123456789ABCDEF")
_LOWER_HEX = frozenset("0123456789abcdef")
_SUFFIXES = frozenset({"", ".zst", ".gz", ".age", ".zst.age", ".gz.age"})
# seawall.catalog.naming.encode_segment leaves such names unchanged
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


class Fallback(Exception):
    """Not the lean path's case; nothing complete-looking was written. ``push_wal`` takes over."""


def zstd_backend() -> ModuleType:
    """python-zstandard's C backend without the package's ``__init__``.

    Same classes, same output: ``zstandard/__init__.py`` re-exports exactly
    this module on CPython. Any surprise (another layout, another
    interpreter) falls back to the normal import.
    """
    import sys

    loaded = sys.modules.get("zstandard")
    if loaded is not None:
        return loaded
    try:
        import importlib.machinery as machinery

        for entry in sys.path:
            pkg = os.path.join(entry or ".", "zstandard")
            if not os.path.isfile(os.path.join(pkg, "__init__.py")):
                continue
            for suffix in machinery.EXTENSION_SUFFIXES:
                origin = os.path.join(pkg, "backend_c" + suffix)
                if os.path.isfile(origin):
                    name = "zstandard.backend_c"
                    loader = machinery.ExtensionFileLoader(name, origin)
                    spec = machinery.ModuleSpec(name, loader, origin=origin)
                    module = loader.create_module(spec)
                    if module is None:
                        break
                    loader.exec_module(module)
                    if hasattr(module, "ZstdCompressor"):
                        sys.modules[name] = module
                        return module
                    break
            break
    except (ImportError, OSError):
        pass
    import zstandard

    return zstandard


def _is_hex(text: str, alphabet: frozenset[str]) -> bool:
    return bool(text) and all(c in alphabet for c in text)


def _parse_recipients(text: str) -> list[str]:
    """``seawall.pipeline.keys.parse_recipients`` without its error: Fallback."""
    out = []
    for line in text.replace(",", "\n").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("age1"):
            raise Fallback("not an age recipient")
        out.append(line)
    return out


def _options(env: Mapping[str, str] | None) -> tuple[str, str, int | None, int, list[str]]:
    """(backup_dir, cluster, level, threads, recipients) or Fallback."""
    from seawall.postgres.wal.walenv import WalEnvError, read_wal_env

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
            recipients.extend(_parse_recipients(item))
        if raw.recipients_file:
            try:
                with open(raw.recipients_file, encoding="utf-8") as fh:
                    recipients.extend(_parse_recipients(fh.read()))
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
    if not (
        0 < len(cluster) <= 200
        and cluster[0] not in ".-"
        and ".." not in cluster
        and all(c in _SAFE for c in cluster)
    ):
        raise Fallback("cluster name needs encoding")
    # COMPRESSION_THREADS=0 (auto): libzstd's own single thread, running beside
    # the hashing thread, i.e. both cores busy without zstd's worker pool
    # (same wall time for a 16 MiB segment, ~8% less CPU: measured)
    threads = raw.compression_threads
    return raw.backup_dir, cluster, raw.compression_level, threads, recipients


def _json_field(text: str, field: str) -> str | None:
    """The scalar value of a top-level ``"field":`` that archive_info wrote.

    Not a JSON parser: it accepts only one occurrence and a plain string or
    integer. Anything else returns None and the general path (json.loads)
    decides; this path only ever *confirms* a match.
    """
    token = f'"{field}":'
    at = text.find(token)
    if at < 0 or text.find(token, at + 1) >= 0:
        return None
    rest = text[at + len(token) :].lstrip(" ")
    if rest.startswith('"'):
        end = rest.find('"', 1)
        value = rest[1:end] if end > 0 else ""
    else:
        end = 0
        while end < len(rest) and rest[end].isdigit():
            end += 1
        value = rest[:end]
    return value if value.isdigit() else None


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

    ``whole``: the file must be exactly one segment (False for a ``.partial``).
    """
    if len(head) < _LONG_HEADER_SIZE:
        raise Fallback("short file")
    info = int.from_bytes(head[2:4], "little")
    pageaddr = int.from_bytes(head[8:16], "little")
    sysid = int.from_bytes(head[24:32], "little")
    seg_size = int.from_bytes(head[32:36], "little")
    blcksz = int.from_bytes(head[36:40], "little")
    if not info & _XLP_LONG_HEADER or (whole and size != seg_size) or size > seg_size:
        raise Fallback("header")
    if blcksz < 1024 or blcksz & (blcksz - 1):  # segment.read_header refuses it
        raise Fallback("block size")
    if seg_size < 1 << 20 or seg_size > 1 << 30 or seg_size & (seg_size - 1):
        raise Fallback("segment size")
    per_log = 0x1_0000_0000 // seg_size
    tli, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:24], 16)
    if tli == 0 or seg >= per_log or pageaddr != (log * per_log + seg) * seg_size:
        raise Fallback("page address")
    return sysid, seg_size


def check_archive_info(text: str, sysid: int, seg_size: int) -> None:
    """archive.json's identity against a segment's header; Fallback unless both match."""
    if _json_field(text, "system_identifier") != str(sysid):
        raise Fallback("system identifier")
    if _json_field(text, "wal_segment_size") != str(seg_size):
        raise Fallback("segment size")


class _Compressor:
    """Compresses the chunks :func:`_hash_and_compress` reads, in a thread.

    A ring of buffers: ``filled[i]`` is released when buffer i holds a chunk,
    ``free[i]`` when the compressor is done with it; a length of 0 ends the
    stream. Compressed pieces go to ``out`` (a queue) as zstd produces them,
    then None; an exception is put in the queue instead of the rest, and the
    loop still drains the ring so the reader never blocks.
    """

    def __init__(self, cctx: object, size: int) -> None:
        import _thread
        from _queue import SimpleQueue

        self.cobj = cctx.compressobj(size=size)  # type: ignore[attr-defined]
        self.views = [memoryview(bytearray(CHUNK)) for _ in range(_NBUF)]
        self.lengths = [0] * _NBUF
        self.filled = [_thread.allocate_lock() for _ in range(_NBUF)]
        self.free = [_thread.allocate_lock() for _ in range(_NBUF)]
        for lock in self.filled:
            lock.acquire()
        self.out: SimpleQueue[bytes | BaseException | None] = SimpleQueue()
        self.error: BaseException | None = None
        _thread.start_new_thread(self._run, ())

    def _compress(self, slot: int, n: int) -> None:
        if self.error is not None:
            return
        try:
            piece = self.cobj.compress(self.views[slot][:n]) if n else self.cobj.flush()
        except BaseException as exc:
            self.error = exc
            return
        if piece:
            self.out.put(piece)

    def _run(self) -> None:
        i = 0
        try:
            while True:
                slot = i % _NBUF
                self.filled[slot].acquire()
                n = self.lengths[slot]
                self._compress(slot, n)
                if n == 0:
                    break
                self.free[slot].release()
                i += 1
        finally:
            if self.error is not None:
                self.out.put(self.error)
            self.out.put(None)


class _Sink:
    """Encrypts (or not) the compressed stream into ``fd`` in a thread.

    ``pyrage.encrypt_io`` pulls through :meth:`read` and pushes through
    :meth:`write`, so the age file is written while zstd is still working,
    with no 3 MiB intermediate copies (those cost more in page faults than
    the encryption itself).
    """

    def __init__(self, fd: int, source: _Compressor, recipients: list[str]) -> None:
        import _thread

        self.fd = fd
        self.source = source
        self.recipients = recipients
        self.pending = b""
        self.pos = 0
        self.ended = False  # the compressor's end (None) was taken from the queue
        self.error: BaseException | None = None
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.joined = False
        _thread.start_new_thread(self._run, ())

    def read(self, n: int = -1) -> bytes:
        while self.pos >= len(self.pending):
            if self.ended:
                return b""
            item = self.source.out.get()
            if item is None:
                self.ended = True
                return b""
            if isinstance(item, BaseException):
                raise item
            self.pending, self.pos = item, 0
        if self.pos == 0 and (n < 0 or n >= len(self.pending)):
            self.pos = len(self.pending)
            return self.pending
        end = len(self.pending) if n < 0 else self.pos + n
        piece = self.pending[self.pos : end]
        self.pos += len(piece)
        return piece

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        return len(data)

    def _run(self) -> None:
        try:
            if self.recipients:
                import pyrage
                from pyrage import x25519

                pyrage.encrypt_io(
                    self, self, [x25519.Recipient.from_str(r) for r in self.recipients]
                )
            else:
                while piece := self.read():
                    self.write(piece)
        except BaseException as exc:
            self.error = exc
        finally:
            while not self.ended:  # let the compressor finish
                self.ended = self.source.out.get() is None
            self.done.release()

    def join(self) -> None:
        if not self.joined:
            self.done.acquire()
            self.joined = True

    def wait(self) -> None:
        """Until the whole stream is written; re-raises what went wrong."""
        self.join()
        if self.source.error is not None:
            raise Fallback(f"compression failed: {self.source.error}")
        if self.error is not None:
            raise self.error


def _hash_and_compress(fd: int, size: int, comp: _Compressor) -> str:
    """sha256 (hex) of the file, feeding the compressor the same bytes."""
    import hashlib

    digest = hashlib.sha256()
    offset = 0
    i = 0
    held: int | None = None  # a slot taken from the compressor but not handed back
    try:
        while offset < size:
            slot = i % _NBUF
            comp.free[slot].acquire()
            held = slot
            view = comp.views[slot][: min(CHUNK, size - offset)]
            n = os.preadv(fd, [view], offset)
            if n <= 0:
                break
            comp.lengths[slot] = n
            comp.filled[slot].release()
            held = None  # after the release: an interrupt in between must not re-take the slot
            digest.update(view[:n])
            offset += n
            i += 1
    finally:
        if offset < size:  # shrank, or the read failed: no archive from this
            comp.error = comp.error or Fallback("the segment shrank or could not be read")
        if held is None:
            held = i % _NBUF
            comp.free[held].acquire()
        comp.lengths[held] = 0  # end of stream
        comp.filled[held].release()
    if offset < size:
        raise Fallback("the segment shrank while it was read")
    return digest.hexdigest()


def _fsync_path(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _existing(directory: str, name: str) -> list[str]:
    """Archived versions of ``name`` in its directory (FileNotFoundError if none)."""
    prefix = f"{name}-"
    found = []
    for entry in os.listdir(directory):
        if not entry.startswith(prefix):
            continue
        sha = entry[len(prefix) : len(prefix) + SHA_LEN]
        if (
            len(sha) == SHA_LEN
            and _is_hex(sha, _LOWER_HEX)
            and entry[len(prefix) + SHA_LEN :] in _SUFFIXES
        ):
            found.append(entry)
    return found


def _unlink_quietly(path: str) -> None:
    try:  # noqa: SIM105 - contextlib would be one more import on the hot path
        os.unlink(path)
    except OSError:
        pass


def claim(directory: str, name: str) -> int:
    """Hold the claim on WAL name ``name`` in ``directory``; returns its descriptor.

    An exclusive ``flock`` on ``<directory>/<name>.claim.partial-00000000``:
    whoever holds it is the only process that may decide "no version of this
    name is archived" and rename one into place. It waits for a holder
    (whose critical section is a listing and a rename). The kernel drops
    the lock when its holder dies, so a kill -9 never wedges the name: the
    next push opens the file left behind and takes it.

    :func:`release` unlinks the file while still holding the lock. A waiter
    may have opened that unlinked file; it then holds a lock nobody else
    can see, so after locking it checks that the path still names the file
    it locked, and starts over if not.
    """
    import fcntl

    path = f"{directory}/{name}{CLAIM_SUFFIX}"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError:
            # left by another user (root pushing by hand, then killed):
            # a shared descriptor still takes an exclusive flock locally
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            now = os.stat(path)
        except FileNotFoundError:  # released (unlinked) while we waited
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_ino, held.st_dev) == (now.st_ino, now.st_dev):
            return fd
        os.close(fd)


def release(fd: int, directory: str, name: str) -> None:
    """Give up the claim of :func:`claim` (the lock file goes, then the lock)."""
    try:
        _unlink_quietly(f"{directory}/{name}{CLAIM_SUFFIX}")
    finally:
        os.close(fd)


def push(path: str, env: Mapping[str, str] | None = None) -> str:
    """Archive the segment at ``path``; returns the archived file's name.

    Returns only once that file and its directory entry are durable (also
    when an identical copy was already archived). Raises :class:`Fallback`
    when the general path must handle the push (nothing complete-looking
    written), and OSError when writing the archive failed (likewise).
    """
    name = os.path.basename(path)
    if len(name) != 24 or not _is_hex(name, _UPPER_HEX):
        raise Fallback("not a plain segment")
    backup_dir, cluster, level, threads, recipients = _options(env)
    if not backup_dir.startswith("/"):  # s3://… has its own lean path; relative: refused
        raise Fallback("BACKUP_DIR is not an absolute path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise Fallback("cannot open the segment") from exc
    try:
        return _push_open(
            fd, name, f"{backup_dir}/{WAL_ROOT}/{cluster}", level, threads, recipients
        )
    finally:
        os.close(fd)


def _push_open(
    fd: int, name: str, archive: str, level: int | None, threads: int, recipients: list[str]
) -> str:
    """:func:`push` of the open segment ``fd``.

    The compressed, encrypted stream is written to a ``.partial-`` temporary
    while the segment is still being hashed and is fdatasync-ed; then, under
    the name's :func:`claim`, the archived versions of the name decide: an
    identical copy already archived (the temporary is dropped), a conflict
    (dropped, Fallback), or none (rename to the final name, which carries
    the hash; after the claim, the fsync of the directory).
    """
    directory = f"{archive}/{name[:16]}"
    try:
        size = os.fstat(fd).st_size
        if size > MAX_SIZE:
            raise Fallback("too large")
        _check_segment(name, os.pread(fd, _LONG_HEADER_SIZE, 0), size, archive)
        if not os.path.isdir(directory):  # the general path creates it durably
            raise Fallback("no directory")
        cctx = zstd_backend().ZstdCompressor(
            level=WAL_ZSTD_LEVEL if level is None else level,
            threads=threads,
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
    sink: _Sink | None = None
    try:
        sink = _Sink(out, _Compressor(cctx, size), recipients)
        try:
            sha = _hash_and_compress(fd, size, sink.source)
        except OSError as exc:
            raise Fallback(f"cannot read the segment: {exc}") from exc
        sink.wait()  # OSError here: the archive could not be written
        # made durable before the claim, to keep its critical section short (a
        # retried duplicate, rare, pays one needless fdatasync for that)
        os.fdatasync(out)
        lock = claim(directory, name)
        try:
            try:
                existing = _existing(directory, name)
            except OSError as exc:
                raise Fallback(f"cannot list {directory}: {exc}") from exc
            if not existing:
                final_name = f"{name}-{sha[:SHA_LEN]}{suffix}"
                os.rename(tmp, f"{directory}/{final_name}")
                committed = True
        finally:
            release(lock, directory, name)
        if existing:
            if any(e[len(name) + 1 : len(name) + 1 + SHA_LEN] != sha[:SHA_LEN] for e in existing):
                raise Fallback("conflict")  # the general path refuses it, with the details
            # PostgreSQL retrying a push that stored it: make sure that one is durable
            _fsync_path(f"{directory}/{existing[0]}")
            _fsync_path(directory, os.O_RDONLY | os.O_DIRECTORY)
            return existing[0]
    finally:
        if sink is not None:
            sink.join()  # never close the file under the writing thread
        os.close(out)
        if not committed:
            _unlink_quietly(tmp)
    _fsync_path(directory, os.O_RDONLY | os.O_DIRECTORY)
    return final_name
