"""A repository with mirrors: the primary decides, every mirror gets a copy or a record.

Why a wrapper and not a loop in each engine: backups, manifests, drill
records and the general ``wal-push`` path all write through one
:class:`~seawall.storage.base.Storage`; wrapping it (the factory does, when
``MIRRORS`` is set) mirrors all of them the same way, and nothing above
storage knows mirrors exist.

The rules (docs/object-storage.md, "Mirrors and sync"):

* **The primary decides success.** An object is written to the primary
  first (its own atomic commit); only then is it copied to each mirror. A
  mirror that fails never fails the write.
* **Copy after commit, checked.** The bytes the caller wrote are hashed on
  the way into the primary; the copy reads them back from the primary,
  hashes them again and aborts the mirror's (atomic) write unless both
  sha256 agree — so a mirror never receives an object the primary does not
  hold exactly. Copy-after-commit rather than a tee: a mirror that stalls
  or dies mid-stream cannot slow or break the primary's write, and a half
  copy is an aborted upload, never a visible object.
* **A miss is recorded, never skipped.** Before the primary write, an
  intent record ``mirrors/<mirror-id>/pending/<key>`` is written in the
  primary; it is removed once the mirror holds the object. A mirror that
  failed, or a process killed between the two commits, leaves the record:
  ``seawall sync`` copies what it names and the exporter counts them (lag
  objects; the oldest record's mtime gives the lag seconds) without
  listing the mirror (the layout: storage/mirror_layout.py, stdlib only,
  for the exporter and the lean wal-push). After the first failure a mirror counts as down for
  the rest of the process (its retries are bounded by ``MIRROR_TIMEOUT``
  once, not once per object): later writes are only recorded. The failure
  also leaves a marker ``mirrors/<mirror-id>/down`` in the primary: for
  ``retry_after`` seconds other processes (the next ``wal-push``, the next
  backup) treat the mirror as down without waiting for it again, so an
  unreachable mirror costs one timeout a minute, not one per WAL segment.
  A successful copy or a complete ``sync`` removes the marker.
* **Deletion:** the same call on every repository in order (primary first),
  so manifest-first deletion holds on each; a mirror that could not delete
  gets a record ``mirrors/<mirror-id>/deletes/<key>`` that ``sync`` applies.
* **Reads** come from the primary; a missing or unreachable object falls
  through to the mirrors in order, and a copy whose size or sha256 does not
  match the manifest falls through too (:func:`first_good_copy`, used by
  the decoder). Using a mirror is logged as a warning naming it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast, runtime_checkable

from seawall.errors import (
    ConfigError,
    NotFoundError,
    SeawallError,
    StorageError,
    VerificationError,
)
from seawall.log import get_logger
from seawall.storage.base import (
    Leasing,
    LocalVolume,
    ObjectInfo,
    Storage,
    Usage,
    repository_time,
)
from seawall.storage.mirror_layout import (
    deletes_prefix,
    down_marker,
    is_mirrored_key,
    mirror_id,
    pending_prefix,
    record,
)

log = get_logger("storage.mirror")

CHUNK = 1 << 20


@dataclass
class Mirror:
    """One mirror: its location (as configured), its id and its backend."""

    location: str
    storage: Storage

    @property
    def id(self) -> str:
        return mirror_id(self.location)


@runtime_checkable
class HasCopies(Protocol):
    """A repository that can name every copy of an object (primary first)."""

    def copies(self) -> list[tuple[str, Storage]]: ...


def copies_of(storage: Storage) -> list[tuple[str, Storage]]:
    """The repositories to read ``storage``'s objects from, primary first, with labels."""
    if isinstance(storage, HasCopies):
        return storage.copies()
    return [("primary", storage)]


def first_good_copy(storage: Storage, key: str, check: Callable[[Storage], None]) -> Storage:
    """The first repository whose copy of ``key`` passes ``check`` (size, sha256).

    ``check`` raises (VerificationError, NotFoundError, StorageError) for a bad
    or missing copy. With one repository this is ``check(storage)``: the same
    error as before mirrors existed. With mirrors, a bad copy on the primary is
    named in a warning and the next repository is tried; the one used is
    logged, so a restore says where its bytes came from.
    """
    candidates = copies_of(storage)
    first: SeawallError | None = None
    for i, (label, repo) in enumerate(candidates):
        try:
            check(repo)
        except (VerificationError, NotFoundError, StorageError) as exc:
            first = first or exc
            if len(candidates) > 1:
                log.warning("%s: the copy in %s is unusable: %s", key, label, exc)
            continue
        if i > 0:
            log.warning("%s: reading the good copy in %s", key, label)
        return repo
    assert first is not None
    raise first


class _HashingProxy:
    """The primary's writer, hashing what the caller writes (to check the mirror copy)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        n = self._inner.write(data)
        self.hash.update(data)
        return n

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._inner.flush()

    def fileno(self) -> int:
        return self._inner.fileno()

    def close(self) -> None:  # the atomic-write context closes the real file
        self._inner.flush()


def copy_object(
    src: Storage, dst: Storage, key: str, expected_sha256: str | None = None
) -> tuple[str, int]:
    """Stream ``key`` from ``src`` into ``dst`` atomically; (sha256, size) of the bytes.

    With ``expected_sha256`` the destination's write is aborted (nothing
    appears) unless the bytes read from ``src`` hash to it.
    """
    h = hashlib.sha256()
    size = 0
    with src.open_read(key) as fh, dst.open_atomic_write(key) as out:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
        digest = h.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            raise VerificationError(
                f"{key}: the copy read from {src.describe()} has sha256 {digest[:16]}…, "
                f"expected {expected_sha256[:16]}…; not copied (the source copy is corrupt)"
            )
    return digest, size


class MirroredStorage:
    """The primary repository plus its mirrors, behind the one Storage protocol."""

    def __init__(
        self, primary: Storage, mirrors: Sequence[Mirror], retry_after: float = 60.0
    ) -> None:
        self.primary = primary
        self.mirrors = list(mirrors)
        self.retry_after = retry_after
        #: mirror id -> the error that took it down in this process
        self.down: dict[str, str] = {}
        #: mirror id -> whether a down marker was found (None: not looked yet)
        self._marker: dict[str, bool] = {}

    # -- what the rest of seawall sees as "the repository": the primary
    def describe(self) -> str:
        return self.primary.describe()

    def local_volume(self) -> LocalVolume | None:
        return self.primary.local_volume()

    def usage(self) -> Usage | None:
        return self.primary.usage()

    def server_time(self) -> float:
        """The primary's clock (storage.base.ServerClock): it stamps what locks judge."""
        return repository_time(self.primary)

    def lease(
        self, key: str, *, timeout: float, command: str, lease_seconds: float = 300.0
    ) -> AbstractContextManager[None]:
        """Locks live in the primary, the repository that decides (a bucket: its lease)."""
        if not isinstance(self.primary, Leasing):
            raise ConfigError(
                f"repository {self.primary.describe()} offers neither a local volume (flock) "
                "nor leases: seawall cannot lock a series there"
            )
        return self.primary.lease(
            key, timeout=timeout, command=command, lease_seconds=lease_seconds
        )

    def copies(self) -> list[tuple[str, Storage]]:
        return [(f"primary {self.primary.describe()}", self.primary)] + [
            (f"mirror {m.location}", m.storage) for m in self.mirrors
        ]

    # -- writes
    @contextmanager
    def _write(self, key: str) -> Iterator[BinaryIO]:
        if not is_mirrored_key(key):
            with self.primary.open_atomic_write(key) as fh:
                yield fh
            return
        undo = self.intend(key)
        try:
            with self.primary.open_atomic_write(key) as fh:
                proxy = _HashingProxy(fh)
                yield cast(BinaryIO, proxy)
        except BaseException:
            undo()  # nothing new in the primary: nothing for the mirror to miss
            raise
        digest = proxy.hash.hexdigest()
        for m in self.mirrors:
            self._copy(m, key, digest)

    def open_atomic_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._write(key)

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_atomic_write(key) as fh:
            fh.write(data)

    def intend(self, key: str) -> Callable[[], None]:
        """Record, before a write of ``key`` to the primary, that every mirror lacks it.

        For :meth:`_write` and for writers that commit to the primary
        themselves (the general ``wal-push``, which then calls
        :meth:`mirror_existing`): a process killed between its commit and
        the copies leaves the records ``seawall sync`` needs. Returns the
        undo, for a write that committed nothing: it removes the records
        this call created (best effort; an older record stays, the mirror
        has lagged since then).
        """
        fresh = self._intent(key)

        def undo() -> None:
            # kept when the primary holds ``key`` after all: a twin writer of the same
            # key (a lean wal-push, which takes no lease) committed it meanwhile and
            # relies on these records (it found them and wrote none); kept too when
            # the primary cannot say (sync drops a record of a missing object)
            if not fresh or self._holds(key) is not False:
                return
            for mid in fresh:
                try:
                    self.primary.delete(f"{pending_prefix(mid)}/{key}")
                except Exception as exc:  # best effort; sync drops stale records
                    log.debug("could not remove the intent record of %s: %s", key, exc)
            if self._holds(key):  # committed between the look and the delete: write back
                try:
                    self._intent(key)
                except Exception as exc:
                    log.debug("could not rewrite the intent record of %s: %s", key, exc)

        return undo

    def _holds(self, key: str) -> bool | None:
        """Whether the primary holds ``key`` (None: it cannot say)."""
        try:
            return self.primary.exists(key)
        except Exception:
            return None

    def _intent(self, key: str) -> list[str]:
        """Write the pending records of ``key`` (before the primary write); the new ones' ids."""
        fresh = []
        for m in self.mirrors:
            rkey = f"{pending_prefix(m.id)}/{key}"
            if self.primary.exists(rkey):  # already lagging: keep the oldest time
                continue
            self.primary.write_bytes(rkey, record(key, m.location, "copy"))
            fresh.append(m.id)
        return fresh

    def _is_down(self, m: Mirror) -> bool:
        """Down in this process, or marked down by another one less than ``retry_after`` ago."""
        if m.id in self.down:
            return True
        if m.id not in self._marker:
            try:
                info = self.primary.stat(down_marker(m.id))
            except (NotFoundError, StorageError):
                self._marker[m.id] = False
                return False
            self._marker[m.id] = True
            age = repository_time(self.primary) - info.mtime  # the clock that stamped it
            if 0 <= age < self.retry_after:
                self.down[m.id] = (
                    f"failed {age:.0f}s ago in another run; retried after {self.retry_after:.0f}s"
                )
                return True
        return False

    def _failed(self, m: Mirror, exc: BaseException) -> None:
        self.down[m.id] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        try:
            self.primary.write_bytes(down_marker(m.id), record("", m.location, self.down[m.id]))
            self._marker[m.id] = True
        except Exception as err:  # the pending records are what matters
            log.debug("could not write the down marker of %s: %s", m.location, err)

    def _copied(self, m: Mirror, key: str) -> None:
        self.primary.delete(f"{pending_prefix(m.id)}/{key}")
        if self._marker.get(m.id):  # it answered again: other runs may stop skipping it
            self.primary.delete(down_marker(m.id))
            self._marker[m.id] = False

    def _copy(self, m: Mirror, key: str, digest: str | None) -> None:
        if self._is_down(m):
            log.warning(
                "mirror %s is down (%s): %s recorded as lagging for `seawall sync`",
                m.location,
                self.down[m.id],
                key,
            )
            return
        try:
            copy_object(self.primary, m.storage, key, digest)
        except Exception as exc:  # a mirror never fails the primary's write
            self._failed(m, exc)
            log.warning(
                "mirror %s missed %s: %s; recorded as lagging (run `seawall sync`)",
                m.location,
                key,
                self.down[m.id],
            )
            return
        self._copied(m, key)

    def mirror_existing(self, key: str) -> None:
        """Copy an object already committed in the primary (by a writer that bypassed
        the wrapper, e.g. the general ``wal-push`` path) to every mirror, or record it."""
        if not is_mirrored_key(key):
            return
        self._intent(key)
        for m in self.mirrors:
            self._copy(m, key, None)

    # -- deletes: the same call on every repository, primary first
    def delete(self, key: str) -> None:
        if not is_mirrored_key(key):
            self.primary.delete(key)
            return
        self._delete_intent(key, tree=False)
        self.primary.delete(key)
        for m in self.mirrors:
            self._mirror_delete(m, key, tree=False)

    def delete_tree(self, prefix: str) -> None:
        if not is_mirrored_key(f"{prefix}/"):
            self.primary.delete_tree(prefix)
            return
        self._delete_intent(prefix, tree=True)
        self.primary.delete_tree(prefix)
        for m in self.mirrors:
            self._mirror_delete(m, prefix, tree=True)

    def _delete_intent(self, key: str, *, tree: bool) -> None:
        """Record, before the primary's deletion, that every mirror is to delete ``key``.

        Why before: a run killed between the primary's deletion and a mirror's
        left the mirror holding what retention removed (a pruned backup's
        manifest: a backup the DR copy still lists), with no record for
        ``sync``. A deletion that then happens everywhere removes its record;
        one killed before the primary's deletion leaves a record that ``sync``
        drops as obsolete (the primary still holds the key).
        """
        what = "delete_tree" if tree else "delete"
        for m in self.mirrors:
            self.primary.write_bytes(f"{deletes_prefix(m.id)}/{key}", record(key, m.location, what))

    def _mirror_delete(self, m: Mirror, key: str, *, tree: bool) -> None:
        pending = f"{pending_prefix(m.id)}/{key}"
        rkey = f"{deletes_prefix(m.id)}/{key}"
        if tree:
            self.primary.delete_tree(pending)
        else:
            self.primary.delete(pending)
        if not self._is_down(m):
            try:
                (m.storage.delete_tree if tree else m.storage.delete)(key)
            except Exception as exc:  # recorded for sync below
                self._failed(m, exc)
            else:
                self.primary.delete(rkey)
                return
        log.warning(
            "mirror %s missed the deletion of %s (%s); recorded for `seawall sync`",
            m.location,
            key,
            self.down[m.id],
        )
        what = "delete_tree" if tree else "delete"
        self.primary.write_bytes(rkey, record(key, m.location, what))  # (sync may have dropped it)

    # -- reads: primary first, then each mirror
    def _first(self, key: str, fn: Callable[[Storage], object]) -> object:
        first: SeawallError | None = None
        for i, (label, repo) in enumerate(self.copies()):
            try:
                result = fn(repo)
            except (NotFoundError, StorageError) as exc:
                first = first or exc
                continue
            if i > 0:
                log.warning("%s: read from %s (the primary: %s)", key, label, first)
            return result
        assert first is not None
        raise first

    def open_read(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self._first(key, lambda s: s.open_read(key)))

    def read_bytes(self, key: str) -> bytes:
        return cast(bytes, self._first(key, lambda s: s.read_bytes(key)))

    def stat(self, key: str) -> ObjectInfo:
        return cast(ObjectInfo, self._first(key, lambda s: s.stat(key)))

    def exists(self, key: str) -> bool:
        for _label, repo in self.copies():
            try:
                if repo.exists(key):
                    return True
            except StorageError:
                continue
        return False

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The primary's listing; a mirror's only when the primary cannot be listed at all."""
        first: StorageError | None = None
        for label, repo in self.copies():
            it = repo.list(prefix)
            try:
                head = next(it, None)
            except StorageError as exc:
                first = first or exc
                continue
            if first is not None:
                log.warning("listing %s from %s (the primary: %s)", prefix or "/", label, first)
            if head is not None:
                yield head
                yield from it
            return
        assert first is not None
        raise first

    def walk(
        self, prefix: str = "", exclude: tuple[str, ...] = ()
    ) -> Iterator[tuple[ObjectInfo, bool]]:
        return self.primary.walk(prefix, exclude)

    def list_partials(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.primary.list_partials(prefix)
