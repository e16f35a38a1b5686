"""Snapshot lifecycle on the server: create, stream down, delete.

The three kinds of snapshot (collection, shard, full storage) share one
shape of endpoints under different prefixes, so a :class:`SnapshotScope`
names the prefix and everything else is common.

Why each step looks the way it does:

- **create** asks ``wait=true`` with the long timeout: the answer carries the
  name and checksum. Qdrant keeps building a snapshot after the client gave
  up, so on a timeout we poll the list until a new snapshot appears (a list
  entry is only published when the file is complete) instead of creating a
  second one that would double the disk use on the server.
- **download** is a pull-based reader for the pipeline: bytes are hashed as
  they pass; an interrupted connection is resumed with ``Range: bytes=N-``
  (a few times) and the sha256 is compared with the server's checksum at
  the end, *before* the pipeline commits the artifact.
- **delete** is always attempted, also after a failure: snapshots left on
  the server fill its disk, the most common way snapshot backups break
  Qdrant itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from seawall.errors import NotFoundError, SeawallError, SourceUnavailableError, VerificationError
from seawall.log import get_logger
from seawall.qdrant.client import QdrantClient, QdrantTimeoutError, url_path

log = get_logger("qdrant.snapshots")

CHUNK = 1024 * 1024
MAX_RESUMES = 5
POLL_INTERVAL = 0.5
#: After a create timed out, keep polling the list at least this long.
MIN_POLL_SECONDS = 30.0


@dataclass(frozen=True)
class SnapshotScope:
    """Where snapshots of one kind live: ``("collections", c, "snapshots")`` …"""

    parts: tuple[str, ...]
    label: str

    @classmethod
    def collection(cls, name: str) -> SnapshotScope:
        return cls(("collections", name, "snapshots"), f"collection {name!r}")

    @classmethod
    def shard(cls, name: str, shard_id: int) -> SnapshotScope:
        return cls(
            ("collections", name, "shards", str(shard_id), "snapshots"),
            f"shard {shard_id} of {name!r}",
        )

    @classmethod
    def full(cls) -> SnapshotScope:
        return cls(("snapshots",), "full storage")

    @property
    def path(self) -> str:
        return url_path(*self.parts)

    def item(self, name: str) -> str:
        return url_path(*self.parts, name)


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot as the server describes it. ``name`` is untrusted text."""

    name: str
    size: int | None
    checksum: str | None
    creation_time: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> SnapshotInfo:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise SourceUnavailableError("Qdrant answered a snapshot description without a name")
        size = raw.get("size")
        checksum = raw.get("checksum")
        return cls(
            name=raw["name"],
            size=int(size) if isinstance(size, int) else None,
            checksum=checksum.lower() if isinstance(checksum, str) else None,
            creation_time=raw.get("creation_time")
            if isinstance(raw.get("creation_time"), str)
            else None,
        )


def usable_name(name: str) -> bool:
    """Whether a listed name is plausible for a snapshot we created.

    Names are only ever used as ONE percent-encoded URL segment and never as
    a file name, so this is not what keeps us safe; it keeps the poll from
    adopting junk (``..``, empty, NUL) as "our" snapshot.
    """
    return bool(name) and name not in (".", "..") and "\x00" not in name and "/" not in name


def list_snapshots(client: QdrantClient, scope: SnapshotScope) -> list[SnapshotInfo]:
    result = client.request("GET", scope.path, what=f"listing snapshots of {scope.label}")
    if not isinstance(result, list):
        raise SourceUnavailableError(
            f"{client.display_url}: unexpected answer listing snapshots of {scope.label}"
        )
    out: list[SnapshotInfo] = []
    for raw in result:
        try:
            out.append(SnapshotInfo.parse(raw))
        except SourceUnavailableError:
            continue
    return out


def create_snapshot(
    client: QdrantClient, scope: SnapshotScope, *, timeout: float | None = None
) -> SnapshotInfo:
    """Create a snapshot and return its description (see the module docstring)."""
    timeout = timeout or client.long_timeout
    try:
        before = {s.name for s in list_snapshots(client, scope)}
    except NotFoundError:
        raise
    started = time.monotonic()
    try:
        result = client.request(
            "POST",
            scope.path,
            what=f"creating a snapshot of {scope.label}",
            params={"wait": "true"},
            timeout=timeout,
        )
    except QdrantTimeoutError:
        log.warning(
            "snapshot creation outlived the client timeout; polling the snapshot list",
            extra={"scope": scope.label, "timeout_s": timeout},
        )
        return _poll_for_new(client, scope, before, max(timeout * 3, MIN_POLL_SECONDS))
    if result is None:
        # 202 accepted (a server or proxy that ignored wait=true): poll as well.
        return _poll_for_new(client, scope, before, max(timeout, MIN_POLL_SECONDS))
    info = SnapshotInfo.parse(result)
    log.info(
        "snapshot created",
        extra={
            "scope": scope.label,
            "size": info.size,
            "seconds": round(time.monotonic() - started, 2),
        },
    )
    return info


def _poll_for_new(
    client: QdrantClient, scope: SnapshotScope, before: set[str], budget: float
) -> SnapshotInfo:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        try:
            fresh = [
                s
                for s in list_snapshots(client, scope)
                if s.name not in before and usable_name(s.name)
            ]
        except (SourceUnavailableError, QdrantTimeoutError):
            fresh = []
        if fresh:
            fresh.sort(key=lambda s: s.creation_time or "", reverse=True)
            log.info("snapshot appeared after the timeout", extra={"scope": scope.label})
            return fresh[0]
        time.sleep(POLL_INTERVAL)
    raise QdrantTimeoutError(
        f"snapshot of {scope.label} did not appear within {budget:.0f} s after the create call "
        "timed out; raise QDRANT_TIMEOUT, and delete any late snapshot on the server"
    )


def delete_snapshot(client: QdrantClient, scope: SnapshotScope, name: str) -> bool:
    """Delete the server copy; never raises (logs instead). True when gone."""
    try:
        client.request(
            "DELETE",
            scope.item(name),
            what=f"deleting snapshot of {scope.label}",
            params={"wait": "true"},
        )
    except NotFoundError:
        return True
    except SeawallError as exc:
        log.warning(
            "could not delete the server's snapshot copy; delete it by hand or it fills "
            "Qdrant's disk",
            extra={"scope": scope.label, "error": str(exc)},
        )
        return False
    return True


class SnapshotDownload:
    """A file-like reader over a snapshot download, resumable and hashed.

    ``read`` returns the snapshot's bytes in order; if the connection breaks,
    the download resumes with a ``Range`` request where it stopped. At the
    end the size and sha256 are compared with what the server announced and
    a mismatch raises :class:`VerificationError`, so the pipeline never
    commits a damaged snapshot.
    """

    def __init__(
        self,
        client: QdrantClient,
        scope: SnapshotScope,
        info: SnapshotInfo,
        *,
        max_resumes: int = MAX_RESUMES,
    ) -> None:
        self._client = client
        self._scope = scope
        self.info = info
        self._max_resumes = max_resumes
        self.resumes = 0
        self.offset = 0
        self.hash = hashlib.sha256()
        self.complete = False
        self._iter: Iterator[bytes] | None = None
        self._ctx: Any = None
        self._buf = b""
        self._pos = 0
        self._pending = b""
        self.total: int | None = info.size

    # -- connection handling -------------------------------------------------------------

    def _open(self) -> None:
        headers = {"accept-encoding": "identity"}
        if self.offset:
            headers["range"] = f"bytes={self.offset}-"
        what = f"downloading snapshot of {self._scope.label}"
        ctx = self._client.stream(
            "GET", self._scope.item(self.info.name), what=what, headers=headers
        )
        response = ctx.__enter__()
        self._ctx = ctx
        if self.offset:
            if response.status_code == 206:
                start = _content_range_start(response.headers.get("content-range"))
                if start != self.offset:
                    self._close()
                    raise SourceUnavailableError(
                        f"Qdrant resumed the download of {self._scope.label} at byte {start} "
                        f"instead of {self.offset}; retry the backup"
                    )
            else:
                # Range ignored: skip what we already have.
                self._iter = response.iter_raw()
                self._skip(self.offset)
                return
        elif self.total is None:
            length = response.headers.get("content-length")
            self.total = int(length) if length and length.isdigit() else None
        self._iter = response.iter_raw()

    def _skip(self, count: int) -> None:
        assert self._iter is not None
        while count > 0:
            chunk = next(self._iter, b"")
            if not chunk:
                raise SourceUnavailableError("download restarted and ended early; retry the backup")
            if len(chunk) > count:
                self._pending = chunk[count:]
                return
            count -= len(chunk)

    def _close(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            with contextlib.suppress(httpx.HTTPError, SeawallError):
                ctx.__exit__(None, None, None)
        self._iter = None

    def close(self) -> None:
        self._close()

    def _next_chunk(self) -> bytes:
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        while True:
            if self._iter is None:
                self._open()
                if self._pending:
                    chunk, self._pending = self._pending, b""
                    return chunk
            assert self._iter is not None
            try:
                return next(self._iter, b"")
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                self._close()
                if self.resumes >= self._max_resumes:
                    raise SourceUnavailableError(
                        f"download of {self._scope.label} broke {self.resumes + 1} times "
                        f"(last at byte {self.offset}: {type(exc).__name__}); check the network "
                        "and retry"
                    ) from None
                self.resumes += 1
                log.warning(
                    "snapshot download interrupted; resuming with a Range request",
                    extra={
                        "scope": self._scope.label,
                        "offset": self.offset,
                        "attempt": self.resumes,
                    },
                )
                time.sleep(min(0.2 * self.resumes, 2.0))

    # -- file-like ---------------------------------------------------------------------

    def read(self, n: int = -1) -> bytes:
        if self.complete:
            return b""
        if self._pos >= len(self._buf):
            chunk = self._next_chunk()
            if not chunk:
                if self.total is not None and self.offset < self.total:
                    # The server closed "cleanly" before the end: resume too.
                    self._close()
                    if self.resumes >= self._max_resumes:
                        raise SourceUnavailableError(
                            f"download of {self._scope.label} ended at byte {self.offset} of "
                            f"{self.total}; retry the backup"
                        )
                    self.resumes += 1
                    return self.read(n)
                self._finish()
                return b""
            self._buf, self._pos = chunk, 0
        want = len(self._buf) - self._pos if n is None or n < 0 else n
        data = self._buf[self._pos : self._pos + want]
        self._pos += len(data)
        self.offset += len(data)
        self.hash.update(data)
        return data

    def readable(self) -> bool:
        return True

    def _finish(self) -> None:
        self._close()
        if self.total is not None and self.offset != self.total:
            raise VerificationError(
                f"snapshot of {self._scope.label}: got {self.offset} bytes, the server announced "
                f"{self.total}; retry the backup"
            )
        digest = self.hash.hexdigest()
        if self.info.checksum and digest != self.info.checksum:
            raise VerificationError(
                f"snapshot of {self._scope.label}: sha256 mismatch (server says "
                f"{self.info.checksum[:16]}…, downloaded {digest[:16]}…); the snapshot was "
                "damaged in transit or on the server; retry the backup"
            )
        self.complete = True

    def check_complete(self) -> None:
        """``before_commit`` hook: the whole snapshot arrived and matched."""
        if not self.complete:
            raise VerificationError(
                f"snapshot of {self._scope.label} was not downloaded completely; retry the backup"
            )

    @property
    def sha256(self) -> str:
        return self.hash.hexdigest()


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/1000"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


class Prefetcher:
    """Run a :class:`SnapshotDownload` in a thread, a few chunks ahead.

    The pipeline is single-threaded (hash, compress, encrypt, hash, write);
    receiving and hashing the download in a second thread overlaps the
    network with that work. The queue holds at most ``depth`` pieces as
    received (up to ``client.READ_SIZE``, 256 KiB), so memory stays bounded; errors of the download (a checksum
    mismatch, a connection that cannot be resumed) are re-raised by
    ``read`` in the pipeline's thread, before anything is committed.
    """

    def __init__(self, download: SnapshotDownload, depth: int = 16) -> None:
        self.download = download
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._thread = threading.Thread(target=self._run, name="snapshot-download", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self.download.read(CHUNK)
                if not self._put(chunk) or not chunk:
                    return
        except BaseException as exc:
            self._put(exc)

    def read(self, n: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            if self._eof:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if not item:
                self._eof = True
                return b""
            self._buf, self._pos = item, 0
        want = len(self._buf) - self._pos if n is None or n < 0 else n
        if self._pos == 0 and want >= len(self._buf):
            self._pos = len(self._buf)
            return self._buf
        data = self._buf[self._pos : self._pos + want]
        self._pos += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)
        self.download.close()
