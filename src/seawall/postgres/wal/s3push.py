"""The lean ``wal-push`` into object storage (``BACKUP_DIR=s3://bucket/prefix``).

The same job as :mod:`seawall.postgres.wal.fastpush` (hash, zstd, age, in
threads that overlap), but the result is kept in memory (a 16 MiB segment
is at most ~16 MiB compressed and encrypted) and stored with one
``PutObject`` through the standard-library client
:mod:`seawall.storage.s3.lean`: no boto3, Typer or pydantic imported. The
keys are those of the local archive (``postgresql/wal/<cluster>/…``,
docs/wal-archiving.md), so fetch, retention and PITR read both alike.

When is PostgreSQL told "archived"? Only after the primary answered the
``PutObject`` with 200 (S3 acknowledges a PUT once the object is stored
durably; a 412 to ``If-None-Match: *`` means an object with the same raw
content is already stored under the same key) and the listing afterwards
shows no other version of the name.

One name, one version, without a lock (ADR 0008's rule on object storage,
where ``flock`` does not exist; docs/adr/0013-wal-push-to-object-storage.md):
the name's versions are listed before the PUT (an identical one: success,
nothing written; another one: refused by the general path), and listed
again after it. Two pushes of one name with *different* content started
together both PUT (their keys differ: the key carries the raw sha256, ADR
0001). S3's listings are strongly consistent (read-after-write: AWS since
2020, SeaweedFS through its filer), so of two pushers that each list after
their own PUT, at least one sees the other's object. A pusher that sees
another version withdraws the object it created (DELETE) and exits
non-zero. So at most one exits 0 and only its version stays; when both saw
each other both withdraw, and PostgreSQL's retries decide. Two pushes of
the *same* content write the same key: ``If-None-Match: *`` lets the first
create it and answers the second 412, which counts as success (a server
that ignores the header overwrites the object with equivalent content:
harmless, the raw content and so the name are the same). The one case this
does not cover (ADR 0013): three archivers of one name at once, two with
one content and one with another, interleaved within milliseconds.

A ``kill -9`` at any moment leaves nothing under a final key except a
complete object: S3 makes a PUT visible only when it is complete. With
``MIRRORS``, each mirror's intent record is PUT before the segment, so a
``kill -9`` after the segment's PUT and before the mirror copies still
leaves the lag recorded for ``seawall sync`` (storage/mirror.py's rule).

Anything else (gzip, a passphrase, a name that needs encoding, a header in
doubt, a foreign cluster, a conflict, credentials from a profile or a web
identity) raises :class:`~seawall.postgres.wal.lean.Fallback` before
anything was stored, for the general path to refuse or do with its full
checks and messages.
"""

from __future__ import annotations

import os

from seawall.postgres.wal.fastpush import _options, check_archive_info, check_header
from seawall.postgres.wal.lean import Fallback, zstd_backend, zstd_workers
from seawall.postgres.wal.leanstream import Compressor, Sink, hash_and_compress
from seawall.walcore.header import LONG_HEADER_SIZE, MAX_SEGMENT_SIZE
from seawall.walcore.layout import (
    ARCHIVE_INFO,
    SHA_LEN,
    WAL_ROOT,
    WAL_ZSTD_LEVEL,
    archived_name,
    is_hex,
    is_history_name,
    is_segment_name,
    is_version_of,
    sha_of,
    subdir,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from seawall.storage.s3.lean import Client
    from seawall.storage.s3.leanconf import Config

#: seconds a push keeps retrying an unreachable or failing server before it
#: gives up (PostgreSQL then retries the whole archive_command);
#: SEAWALL_WAL_S3_DEADLINE overrides
DEFAULT_DEADLINE = 30.0


def s3_backup_dir(env: Mapping[str, str] | None = None) -> str | None:
    """``BACKUP_DIR`` when it is an ``s3://`` URL (same precedence as settings.py), else None."""
    from seawall.walcore.env import read_value

    value = read_value("backup_dir", env)
    text = str(value) if value else ""
    return text if text.startswith("s3://") else None


class _MemorySink(Sink):
    """:class:`~seawall.postgres.wal.leanstream.Sink` keeping the stored bytes in memory, hashed.

    The sha256 of the payload is what SigV4 signs (``x-amz-content-sha256``)
    and the server checks; computing it in the sink's thread, as the bytes
    come, keeps it off the critical path.
    """

    def __init__(self, source: Compressor, recipients: list[str]) -> None:
        import hashlib

        self.parts: list[bytes] = []
        self.digest = hashlib.sha256()
        super().__init__(-1, source, recipients)

    def write(self, data: bytes) -> int:
        piece = bytes(data)  # no copy for a bytes object
        self.parts.append(piece)
        self.digest.update(piece)
        return len(piece)


class _Background:
    """``fn()`` in a thread; :meth:`result` waits and returns it or re-raises its error."""

    def __init__(self, fn: Callable[[], list[str]]) -> None:
        import _thread

        self.fn = fn
        self.value: list[str] = []
        self.error: BaseException | None = None
        self.done = _thread.allocate_lock()
        self.done.acquire()
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.release()

    def result(self) -> list[str]:
        self.done.acquire()
        self.done.release()
        if self.error is not None:
            raise self.error
        return self.value


def _kind(name: str) -> str:
    """segment | partial | backup | history, or Fallback for anything else."""
    if is_segment_name(name):
        return "segment"
    if name.endswith(".partial") and len(name) == 32 and is_segment_name(name[:24]):
        return "partial"
    if (
        name.endswith(".backup")
        and len(name) == 40
        and name[24] == "."
        and is_segment_name(name[:24])
        and is_hex(name[25:33])
    ):
        return "backup"
    if is_history_name(name):
        return "history"
    raise Fallback("not a WAL file name")


def _versions(client: Client, directory: str, name: str) -> list[str]:
    """Archived versions of ``name`` (keys relative to the repository)."""
    prefix = f"{directory}/{name}-"
    start = len(directory) + 1
    return [
        entry.key
        for entry in client.list(prefix)
        if entry.key.startswith(prefix) and is_version_of(entry.key[start:], name)
    ]


def _sha_of(key: str, name: str) -> str:
    return sha_of(key.rsplit("/", 1)[-1], name)


def _check_archive(client: Client, archive: str, cluster: str, sysid: int, seg_size: int) -> None:
    """archive.json against the segment; the first push creates it (conditionally)."""
    key = f"{archive}/{ARCHIVE_INFO}"
    raw = client.get(key)
    if raw is None:
        import hashlib

        from seawall.walcore.archive_info import ArchiveInfo

        # the document the general path writes (first push only: json and
        # dataclasses are imported on this path once per archive)
        body = ArchiveInfo(str(sysid), seg_size, cluster).to_json()
        status = client.put(
            key, [body], hashlib.sha256(body).hexdigest(), if_none_match=True,
            what=f"creating {key}",
        )  # fmt: skip
        if status == 200:
            return
        raw = client.get(key)  # another push created it meanwhile: judge that one
        if raw is None:
            raise Fallback("archive.json vanished")
    check_archive_info(raw.decode("utf-8", "replace"), sysid, seg_size)


class ClientPool:
    """Idle lean S3 clients, connection open, for a process that pushes many segments.

    The asynchronous pusher (runner/wal_pusher.py, ADR 0017) pushes one
    segment after another, two at a time: a client per push would pay a
    TCP connect and a TLS handshake (and the server's side of both) for
    every segment. Each push takes a client for its whole length (never two
    pushes on one connection) and gives it back; a push that raised closes
    its client's connection first (it may have been cut mid-answer), so the
    next one reconnects; so does one idle longer than :attr:`IDLE` (servers
    close idle keep-alive connections, and a request on one the server closed
    would cost a failed attempt and a retry's pause). Thread-safe; at most one
    client per push in flight.
    """

    #: seconds an idle connection is trusted (AWS closes idle ones after ~20 s)
    IDLE = 4.0

    def __init__(self) -> None:
        import threading

        self._idle: list[tuple[Client, float]] = []  # (client, idle since: monotonic)
        self._mutex = threading.Lock()

    def take(self, config: Config, deadline: float) -> Client:
        import time

        with self._mutex:
            for i, (each, since) in enumerate(self._idle):
                if _same(each.config, config):
                    del self._idle[i]
                    if time.monotonic() - since > self.IDLE:
                        each.close()  # reconnects on first use
                    each.deadline = deadline
                    return each
        from seawall.storage.s3.lean import Client

        return Client(config, deadline=deadline)

    def give(self, client: Client, *, broken: bool) -> None:
        import time

        if broken:
            client.close()
        with self._mutex:
            self._idle.append((client, time.monotonic()))

    def close(self) -> None:
        with self._mutex:
            idle, self._idle = self._idle, []
        for each, _ in idle:
            each.close()


def _same(a: Config, b: Config) -> bool:
    return all(getattr(a, slot) == getattr(b, slot) for slot in type(a).__slots__)


def push(
    path: str,
    env: Mapping[str, str] | None = None,
    mirrors: Sequence[tuple[str, str]] = (),
    clients: ClientPool | None = None,
) -> str:
    """Archive ``path`` into the ``s3://`` repository; returns the stored key.

    Raises Fallback (nothing stored under a final key, the general path
    decides), :class:`seawall.storage.s3.leanconf.S3Error` (the server failed or
    refused: one line, nothing stored), OSError (the segment unreadable).

    ``mirrors``: (id, location) of each ``MIRRORS`` entry. Before the PUT
    each gets its intent record ``mirrors/<id>/pending/<key>`` in the
    primary, as ``MirroredStorage`` and the lean local push write one, so a
    push killed between the PUT and the copies leaves the mirror's lag
    recorded; a push that stores nothing removes the records it created,
    unless a twin push committed the key meanwhile (:func:`_withdraw`).
    The copies are the caller's (runner/wal_fast.py).

    ``clients``: a process that pushes many segments keeps its connections
    open between them (:class:`ClientPool`); without it the one client of
    this push is closed at the end.
    """
    from seawall.storage.s3.leanconf import NeedsGeneral, config_from_env

    name = os.path.basename(path)
    kind = _kind(name)
    backup_dir, cluster, level, threads, recipients = _options(env)
    try:
        config = config_from_env(backup_dir, env)
    except NeedsGeneral as exc:
        raise Fallback(str(exc)) from exc
    source = os.environ if env is None else env
    try:
        deadline = float(source.get("SEAWALL_WAL_S3_DEADLINE") or DEFAULT_DEADLINE)
    except ValueError as exc:
        raise Fallback("SEAWALL_WAL_S3_DEADLINE is not a number") from exc
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise Fallback("cannot open the file") from exc
    made: list[Client] = []

    def client() -> Client:
        """The one client of this push, made on first use: by the probe's thread,
        so the client's imports (hmac, the signer, leannet, _ssl) are not on the
        encoding's path."""
        if not made:
            if clients is not None:
                made.append(clients.take(config, deadline))
            else:
                from seawall.storage.s3.lean import Client

                made.append(Client(config, deadline=deadline))
        return made[0]

    broken = True
    try:
        key = _push_open(client, fd, name, kind, cluster, level, threads, recipients, mirrors)
        broken = False
        return key
    finally:
        os.close(fd)
        for each in made:
            if clients is not None:
                clients.give(each, broken=broken)
            else:
                each.close()


def _push_open(
    client: Callable[[], Client],
    fd: int,
    name: str,
    kind: str,
    cluster: str,
    level: int | None,
    threads: int,
    recipients: list[str],
    mirrors: Sequence[tuple[str, str]] = (),
) -> str:
    archive = f"{WAL_ROOT}/{cluster}"
    directory = f"{archive}/{subdir(name)}"
    size = os.fstat(fd).st_size
    if size > MAX_SEGMENT_SIZE:
        raise Fallback("too large")
    header: tuple[int, int] | None = None
    if kind in ("segment", "partial"):
        head = os.pread(fd, LONG_HEADER_SIZE, 0)
        header = check_header(name, head, size, whole=kind == "segment")
    try:
        cctx = zstd_backend().ZstdCompressor(
            level=WAL_ZSTD_LEVEL if level is None else level,
            threads=zstd_workers(threads),
            write_checksum=True,
        )
    except Exception as exc:  # zstd refuses the options
        raise Fallback(f"{type(exc).__name__}: {exc}") from exc

    def probe() -> list[str]:
        if header is not None:
            _check_archive(client(), archive, cluster, *header)
        return _versions(client(), directory, name)

    # archive.json and the listing travel while this thread hashes and the
    # others compress and encrypt (the socket waits release the GIL)
    background = _Background(probe)
    try:
        sink = _MemorySink(Compressor(cctx, size), recipients)
        try:
            sha = hash_and_compress(fd, size, sink.source)
        finally:
            sink.join()
    finally:
        before = background.result()  # joined before anything else uses the connection
    sink.wait()
    same = [k for k in before if _sha_of(k, name) == sha[:SHA_LEN]]
    if len(before) > len(same):
        raise Fallback("conflict")  # the general path refuses it, with the details
    if same:
        return same[0]  # PostgreSQL retrying a push that stored it: S3 holds it durably
    suffix = ".zst.age" if recipients else ".zst"
    key = f"{directory}/{archived_name(name, sha, suffix)}"
    s3 = client()  # the probe's: made and connected by now
    records = _intend(s3, key, mirrors) if mirrors else []
    try:
        status = s3.put(
            key, sink.parts, sink.digest.hexdigest(), if_none_match=True, what=f"writing {name}"
        )
        after = _versions(s3, directory, name)
        if status == 412 and key not in after:
            raise Fallback("the server answered 412 but holds no such object")
        if any(_sha_of(k, name) != sha[:SHA_LEN] for k in after):
            if status == 200:  # ours is one of two versions: withdraw it (module docstring)
                s3.delete(key)
            raise Fallback("raced")
    except BaseException:
        if records:
            _withdraw(s3, key, records, mirrors)
        raise
    return key


def _withdraw(s3: Client, key: str, records: list[str], mirrors: Sequence[tuple[str, str]]) -> None:
    """After a push that stored nothing: delete the records it created, unless ``key`` is
    in the primary now. A twin push of the same segment (the pusher and PostgreSQL's
    wal-push, or two servers' archivers) that committed it meanwhile found these records,
    created none of its own and relies on them until its copies are made: removing them
    would leave a segment no mirror has and no record names. Keys of one name and one
    sha256 hold the same bytes, so the twin's object is ours to keep recorded. Kept too
    when the primary cannot say (``sync`` drops a record of a missing object); a twin
    that commits between the look and the delete gets them written back."""
    try:
        if s3.head(key) is not None:
            return
    except Exception:  # the push's own error is the one to report
        return
    _drop(s3, records)
    try:
        if s3.head(key) is not None:
            _intend(s3, key, mirrors)
    except Exception:  # best effort, as above
        return


def _drop(s3: Client, keys: list[str]) -> None:
    """Delete the records ``keys``, best effort (sync drops a record of a missing object)."""
    for rkey in keys:
        try:
            s3.delete(rkey)
        except Exception:  # the push's own error is the one to report
            continue


def _intend(s3: Client, key: str, mirrors: Sequence[tuple[str, str]]) -> list[str]:
    """Write the pending record of ``key`` for each mirror (``MirroredStorage._intent``'s
    objects); the keys of those this call created. An existing record is kept
    (``If-None-Match``: the mirror has lagged since then)."""
    import hashlib

    from seawall.storage.mirror_layout import pending_prefix, record

    created: list[str] = []
    try:
        for mid, location in mirrors:
            rkey = f"{pending_prefix(mid)}/{key}"
            body = record(key, location, "copy")
            status = s3.put(
                rkey, [body], hashlib.sha256(body).hexdigest(), if_none_match=True,
                what=f"writing the mirror record {rkey}",
            )  # fmt: skip
            if status == 200:
                created.append(rkey)
    except BaseException:
        _drop(s3, created)
        raise
    return created
