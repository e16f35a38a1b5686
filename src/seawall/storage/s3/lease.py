"""Series locks on S3: a conditional create with a lease (docs/adr/0011-s3-client.md).

``flock`` needs a shared filesystem; a bucket has none. The lock is an
object created with ``If-None-Match: *`` — of two runs racing, S3 lets
exactly one create it (the other gets 412). The holder renews it every
``lease/3`` with ``If-Match: <its ETag>``; a holder that died stops
renewing, and once ``LastModified + lease`` has passed *by the server's
clock* (the ``Date`` of its answer, never ours) another run takes it over
with ``If-Match: <the stale ETag>``, so of two runs racing for a dead
holder's lock one wins. A holder whose renewal is refused has lost the lock
(it was too slow, and another run took it over): ``lost`` says so, and the
run must stop writing.

Runs reach it through :mod:`seawall.catalog.locks`, which takes flock on
a local volume and this lease otherwise (ADR 0012).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from seawall.errors import LockedError
from seawall.storage.s3.retry import error_code

if TYPE_CHECKING:
    from seawall.storage.s3.backend import S3Storage

POLL = 1.0


def _gone(info: dict[str, Any]) -> bool:
    """Whether the holder named in a lock ran on this host and its process is gone.

    Why: a run killed by a signal (kill -9, OOM) leaves its lease to run out;
    "wait for it, or raise LOCK_TIMEOUT" reads as if a run were still busy.
    Only the message depends on this (a pid seen from another container with
    the same host name could mislead it); the takeover waits for the lease.
    """
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, not ours to signal
        return False
    return False


class S3Lease:
    """One lock object, held while the context is open."""

    def __init__(
        self, storage: S3Storage, key: str, *, lease_seconds: float = 300.0, command: str = ""
    ) -> None:
        self.storage = storage
        self.key = key
        self.full = storage._full(key)
        self.lease_seconds = lease_seconds
        self.run_id = os.urandom(8).hex()
        self.command = command
        self.etag: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps(
            {
                "run_id": self.run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "command": self.command,
                "lease_seconds": self.lease_seconds,
            }
        ).encode()

    def _put(self, **condition: str) -> str | None:
        """Conditional put; the new ETag, or None when the condition did not hold."""
        try:
            resp = self.storage._call(
                f"lock {self.key}",
                lambda: self.storage.client.put_object(
                    Bucket=self.storage.bucket, Key=self.full, Body=self._body(), **condition
                ),
            )
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
                "409",
            ):
                return None
            raise
        return str(resp["ETag"])

    def _holder(self) -> tuple[str, dict[str, Any], float] | None:
        """(ETag, content, seconds left by the server's clock) of the current lock."""
        try:
            resp = self.storage._call(
                f"lock {self.key}",
                lambda: self.storage.client.get_object(Bucket=self.storage.bucket, Key=self.full),
            )
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in ("NoSuchKey", "404"):
                return None
            raise
        content: dict[str, Any] = json.loads(resp["Body"].read() or b"{}")
        server_now = parsedate_to_datetime(
            resp["ResponseMetadata"]["HTTPHeaders"]["date"]
        ).timestamp()
        lease = float(content.get("lease_seconds", self.lease_seconds))
        left = resp["LastModified"].timestamp() + lease - server_now
        return str(resp["ETag"]), content, left

    def acquire(self, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            etag = self._put(IfNoneMatch="*")
            if etag is None:
                holder = self._holder()
                if holder is not None and holder[2] < 0:
                    etag = self._put(IfMatch=holder[0])  # take over an expired lease
            if etag is not None:
                self.etag = etag
                self._renewer = threading.Thread(target=self._renew, daemon=True)
                self._renewer.start()
                return
            if time.monotonic() >= deadline:
                raise self._locked(holder)
            time.sleep(POLL)

    def _locked(self, holder: tuple[str, dict[str, Any], float] | None) -> LockedError:
        if holder is None:
            return LockedError(f"{self.storage.url}/{self.key} is locked by another run")
        _, info, left = holder
        who = (
            f"{self.storage.url}/{self.key} is held by run {info.get('run_id', '?')} "
            f"({info.get('command') or 'seawall'}, pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')})"
        )
        if _gone(info):
            return LockedError(
                f"{who}, which is no longer running (killed?): its lease runs out in "
                f"{max(0, left):.0f}s, then the next run takes the lock over by itself "
                "(nothing to clean up); wait that long, or raise LOCK_TIMEOUT above it"
            )
        return LockedError(
            f"{who}, lease ends in {max(0, left):.0f}s unless renewed: "
            "wait for it, or raise LOCK_TIMEOUT"
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                etag = self._put(IfMatch=self.etag or "")
            except Exception:
                continue  # transient: the next renewal (lease/3 later) tries again
            if etag is None:
                self.lost.set()
                return
            self.etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.lost.is_set() or self.etag is None:
            return
        etag, self.etag = self.etag, None
        try:  # only our own lock: a run that took it over keeps it
            self.storage._call(
                f"unlock {self.key}",
                lambda: self.storage.client.delete_object(
                    Bucket=self.storage.bucket, Key=self.full, IfMatch=etag
                ),
            )
        except Exception as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, ClientError)
                and error_code(cause) in ("PreconditionFailed", "412", "NoSuchKey", "404")
            ):
                raise

    def __enter__(self) -> S3Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
