"""Fault injection for the Qdrant test server.

Why: the failures seawall must survive (a download cut mid-stream, a lying
checksum, a full disk, a create that outlives the client's timeout, a hostile
snapshot name...) are rare against a healthy server and impossible to provoke
on demand against a real one. Tests arm a fault on ``server.faults`` and the
HTTP handler consults it at the exact point where the real failure would
happen. Every fault has a budget: ``times=1`` fires once, ``times=None``
forever; ``fired`` counts how often each one actually triggered so a test can
prove its fault was exercised (a fault that never fires makes a test that
cannot fail).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Budget:
    remaining: int | None  # None = unlimited

    def take(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass
class _Armed:
    budget: _Budget
    value: Any = None
    match: str | None = None  # collection name (or path prefix) filter


HOSTILE_NAMES: tuple[str, ...] = (
    "../../etc/passwd",
    "a/b.snapshot",
    "..%2F..%2Fescape.snapshot",
    "nul\x00byte.snapshot",
    "/abs/path.snapshot",
    "..",
)
"""Snapshot names a compromised or buggy server could report."""


@dataclass
class Faults:
    """Thread-safe registry of armed faults; see the module docstring."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _armed: dict[str, list[_Armed]] = field(default_factory=dict)
    fired: Counter[str] = field(default_factory=Counter)

    # -- arming ---------------------------------------------------------------------

    def _arm(
        self, kind: str, times: int | None, value: Any = None, match: str | None = None
    ) -> None:
        with self._lock:
            self._armed.setdefault(kind, []).append(_Armed(_Budget(times), value, match))

    def _take(self, kind: str, key: str | None = None) -> _Armed | None:
        with self._lock:
            for armed in self._armed.get(kind, []):
                if armed.match is not None:
                    if key is None:
                        continue
                    # "/..." filters by path prefix, anything else is a collection name
                    hit = (
                        key.startswith(armed.match)
                        if armed.match.startswith("/")
                        else key == armed.match
                    )
                    if not hit:
                        continue
                if armed.budget.take():
                    self.fired[kind] += 1
                    return armed
        return None

    def clear(self) -> None:
        """Disarm everything (counters are kept)."""
        with self._lock:
            self._armed.clear()

    def cut_download(self, after_bytes: int, times: int | None = 1) -> None:
        """Close the connection after ``after_bytes`` body bytes of a snapshot download."""
        self._arm("cut_download", times, after_bytes)

    def wrong_checksum(self, times: int | None = 1, collection: str | None = None) -> None:
        """Report a wrong sha256 for snapshots (in create answers and lists)."""
        self._arm("wrong_checksum", times, None, collection)

    def fail_create(
        self, status: int = 500, times: int | None = 1, collection: str | None = None
    ) -> None:
        """Answer snapshot creation with ``status`` (500 service error, 507 disk full...)."""
        self._arm("fail_create", times, status, collection)

    def disk_full_on_create(self, times: int | None = 1, collection: str | None = None) -> None:
        """Answer snapshot creation with 507 and Qdrant's "No space left on device" error."""
        self.fail_create(507, times, collection)

    def slow_create(
        self, delay: float, times: int | None = 1, collection: str | None = None
    ) -> None:
        """Hold the create answer for ``delay`` seconds; the snapshot appears in the
        list only once that time has passed (Qdrant keeps working after a client
        timeout)."""
        self._arm("slow_create", times, delay, collection)

    def unavailable(
        self, times: int | None = 1, path_prefix: str | None = None, status: int = 503
    ) -> None:
        """Answer requests (optionally only those under ``path_prefix``) with 503."""
        self._arm("unavailable", times, status, path_prefix)

    def garbage(self, times: int | None = 1, path_prefix: str | None = None) -> None:
        """Answer requests with a 200 whose body is not JSON (a proxy error page)."""
        self._arm("garbage", times, None, path_prefix)

    def hostile_snapshot_names(
        self,
        names: tuple[str, ...] = HOSTILE_NAMES,
        times: int | None = None,
        collection: str | None = None,
    ) -> None:
        """Add entries with hostile names to snapshot lists."""
        self._arm("hostile_names", times, tuple(names), collection)

    def name_next_snapshot(
        self, name: str, times: int | None = 1, collection: str | None = None
    ) -> None:
        """Give the next created snapshot this (possibly hostile) name."""
        self._arm("snapshot_name", times, name, collection)

    def delete_after_list(self, collection: str, times: int | None = 1) -> None:
        """Delete ``collection`` right after a ``GET /collections`` listed it."""
        self._arm("delete_after_list", times, collection)

    def fail_upload(
        self, status: int = 500, times: int | None = 1, collection: str | None = None
    ) -> None:
        """Receive a snapshot upload completely, then answer ``status``
        (500 restore failure, 507 disk full) without restoring anything."""
        self._arm("fail_upload", times, status, collection)

    def lose_points_on_restore(
        self, count: int = 1, times: int | None = 1, collection: str | None = None
    ) -> None:
        """After a successful restore, delete ``count`` points (ids from 0 up):
        the restore answers 200 but the points count no longer matches."""
        self._arm("lose_points", times, count, collection)

    # -- consulted by the handler -----------------------------------------------------

    def take(self, kind: str, key: str | None = None) -> _Armed | None:
        """Consume one firing of ``kind`` matching ``key`` (collection or path)."""
        return self._take(kind, key)

    def peek_all(self, kind: str) -> list[_Armed]:
        with self._lock:
            return list(self._armed.get(kind, []))
