"""Every repository the exporter reports on: the primary and each mirror.

Why per repository: a PersistentVolumeClaim beside the database is no
disaster-recovery copy, so operators keep mirrors (``MIRRORS``) — and a
mirror nobody watches is one that silently stopped being written. For each
repository the exporter says whether it answers, how much it holds, the
newest backup of each series it holds and, for a mirror, how far it lags
behind the primary: the objects present in the primary and missing from the
mirror (a mirror is a full repository with the same key layout), and the age
of the oldest of them.

Why a background listing: an object store has nothing cheaper to offer than
``ListObjectsV2`` (1,000 keys a request), and Prometheus scrapes every
15-60 s. Each repository is listed in a thread of its own every
``--refresh-interval`` seconds (a hung mirror never delays the primary),
and a scrape only reads the result of the last listing: it never lists,
and it still answers while a repository is down. An object store is listed
incrementally (:mod:`seawall.exporter.listing`): the WAL segments a
listing already knows are not listed again until the full listing every
``--rescan-interval`` seconds. One repository is not
listed at all: a local primary without mirrors (its catalog and WAL archive
are already watched through inotify, and its bytes are what they record;
listing 100,000 files would only cost CPU and memory).

Keys in hidden directories (``.locks`` …) are local bookkeeping, not
repository content, and are left out of every count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from seawall.errors import SeawallError
from seawall.exporter.catalog_listed import ListedCatalog
from seawall.exporter.listing import PagedListing, Region, cluster_prefix, sweep, wal_regions
from seawall.exporter.wal_state import MAX_INFO_BYTES, WalState
from seawall.storage.base import ObjectInfo, ServerClock, Storage
from seawall.storage.mirror_layout import is_mirrored_key

log = logging.getLogger("seawall.exporter.repositories")

Clock = Callable[[], float]
PRIMARY, MIRROR = "primary", "mirror"
#: seconds between full listings of an object store (``--rescan-interval``)
RESCAN_INTERVAL = 300.0


@dataclass(frozen=True)
class Listing:
    """What one listing of a repository found."""

    at: float  # wall-clock time the listing finished
    objects: int
    bytes: int
    #: key -> modification time; kept only where mirror lag is computed
    mtimes: dict[str, float]


def _hidden(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))


class RepositoryView:
    """One repository: its last listing, and the catalog/WAL state built from it."""

    def __init__(
        self,
        label: str,
        storage: Storage,
        *,
        role: str = PRIMARY,
        keep_keys: bool = False,
        clock: Clock = time.time,
        rescan_interval: float = RESCAN_INTERVAL,
    ) -> None:
        self.label = label  # the location as the operator wrote it (never a secret)
        self.storage = storage
        self.role = role
        self.keep_keys = keep_keys
        self.clock = clock
        local = storage.local_volume() is not None
        #: the catalog from listings, for every repository without a local volume and
        #: for every mirror (the newest backup per series it holds)
        self.catalog = ListedCatalog(storage) if (not local or role == MIRROR) else None
        #: the WAL archive from listings: the primary on object storage only
        self.wal = WalState() if (not local and role == PRIMARY) else None
        self.listed = role == MIRROR or keep_keys or not local
        #: the repository's clock minus this host's, as of the last listing: 0 for a
        #: volume; for S3 from the listing's ``Date`` (storage.base.ServerClock)
        self.skew = 0.0
        self.reachable: bool | None = None  # None: not refreshed yet
        self.listing: Listing | None = None
        self.error: str | None = None
        self.version = 0
        self.refreshed_mono = float("-inf")
        self.refreshes = 0
        #: incremental listing (object storage): the WAL regions the last listing
        #: knows, and when the last full listing started
        self.rescan_interval = rescan_interval
        self.monotonic: Clock = time.monotonic
        self.full_requested = False  # set by the mirror-lag computation
        self._regions: dict[str, Region] = {}
        self._full_mono = float("-inf")
        self.full_listings = 0
        self.list_requests = 0  # ListObjectsV2 requests of the paged listings so far

    def refresh(self) -> None:
        """List the repository once and rebuild what depends on it; never raises."""
        self.refreshes += 1
        self.refreshed_mono = time.monotonic()
        vol = self.storage.local_volume()
        try:
            if vol is not None and not vol.root.is_dir():
                raise SeawallError(f"{vol.root} is not a directory")
            objects = self._list()
            if isinstance(self.storage, ServerClock):  # no request: the listing's Date
                self.skew = self.storage.server_time() - time.time()
        except Exception as exc:  # whatever the backend raises: the repository is down
            self.reachable = False
            self.error = str(exc)
            if self.catalog is not None:
                self.catalog.unreachable()
            log.warning("repository %s unreachable: %s", self.label, exc)
            return
        if self.catalog is not None:
            self.catalog.update(objects)
        if self.wal is not None:
            self.wal.load(objects, self._read_info)
        mtimes = {o.key: o.mtime for o in objects} if self.keep_keys else {}
        self.listing = Listing(self.clock(), len(objects), sum(o.size for o in objects), mtimes)
        self.reachable = True
        self.error = None
        self.version += 1

    def _list(self) -> list[ObjectInfo]:
        """The repository's objects (hidden ones left out): incremental where it can."""
        if not isinstance(self.storage, PagedListing):
            return [o for o in self.storage.list("") if not _hidden(o.key)]
        started = self.monotonic()
        full = self.full_requested or started - self._full_mono >= self.rescan_interval
        listed, requests = sweep(self.storage.list_pages_after, {} if full else self._regions)
        self.list_requests += requests
        objects = [o for o in listed if not _hidden(o.key)]
        self._regions = wal_regions(objects)
        if full:
            self._full_mono = started
            self.full_requested = False
            self.full_listings += 1
        return objects

    def known_below(self, key: str) -> bool:
        """Whether ``key`` falls in a WAL region the next incremental listing skips."""
        prefix = cluster_prefix(key)
        region = self._regions.get(prefix) if prefix is not None else None
        return region is not None and key < region.last

    def _read_info(self, key: str) -> bytes | None:
        try:
            info = self.storage.stat(key)
            if info.size > MAX_INFO_BYTES:
                return None
            return self.storage.read_bytes(key)
        except (SeawallError, OSError):
            return None


class Repositories:
    """The primary and the mirrors, refreshed in background threads (or on demand)."""

    def __init__(
        self, primary: RepositoryView, mirrors: list[RepositoryView], *, interval: float = 60.0
    ) -> None:
        self.primary = primary
        self.mirrors = mirrors
        self.interval = interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lag_memo: dict[str, tuple[tuple[int, int], tuple[int, float | None]]] = {}

    @classmethod
    def of(
        cls,
        primary: tuple[str, Storage],
        mirrors: list[tuple[str, Storage]] | None = None,
        *,
        interval: float = 60.0,
        clock: Clock = time.time,
        rescan_interval: float = RESCAN_INTERVAL,
    ) -> Repositories:
        mirrors = mirrors or []
        view = RepositoryView(
            *primary,
            role=PRIMARY,
            keep_keys=bool(mirrors),
            clock=clock,
            rescan_interval=rescan_interval,
        )
        return cls(
            view,
            [
                RepositoryView(
                    *m, role=MIRROR, keep_keys=True, clock=clock, rescan_interval=rescan_interval
                )
                for m in mirrors
            ],
            interval=interval,
        )

    def __iter__(self) -> Iterator[RepositoryView]:
        yield self.primary
        yield from self.mirrors

    # --- refreshing ---------------------------------------------------------------
    def start(self, first_wait: float = 30.0) -> None:
        """List every listed repository now (in parallel), then every ``interval`` seconds.

        Waits up to ``first_wait`` seconds for the primary's first listing, so
        the first scrape of an object-storage repository is served from a warm
        catalog (as a local one is), without letting a primary that is down
        keep the port closed for the whole retry deadline.
        """
        for view in self:
            if not view.listed:
                continue
            if isinstance(view.storage, PagedListing):
                how = f"incremental, a full listing every {view.rescan_interval:g}s"
            else:
                how = "full"
            log.info("listing %s every %gs (%s)", view.label, self.interval, how)
            thread = threading.Thread(
                target=self._loop, args=(view,), name=f"repository-{view.role}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + first_wait
        while self.primary.listed and self.primary.reachable is None:
            if time.monotonic() >= deadline or self._stop.wait(0.05):
                return

    def _loop(self, view: RepositoryView) -> None:
        while True:
            try:
                view.refresh()
            except Exception:  # the thread must never die
                log.warning("refreshing %s failed", view.label, exc_info=True)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def refresh_due(self) -> None:
        """Without background threads (tests, library use): refresh what is stale now."""
        if self._threads:
            return
        now = time.monotonic()
        for view in self:
            if view.listed and now - view.refreshed_mono >= self.interval:
                view.refresh()

    # --- mirror lag ---------------------------------------------------------------
    def lag(self, mirror: RepositoryView) -> tuple[int, float | None] | None:
        """(objects in the primary missing from ``mirror``, mtime of the oldest of them).

        The mtime is the primary's (S3: ``LastModified``, the server's clock):
        its age is judged against ``now + primary.skew`` (repository_metrics).

        None when either listing is missing or failed (the lag is unknown then;
        ``seawall_repository_reachable`` says why). A missing key inside a WAL
        region the mirror's incremental listing skips (a gap ``sync`` may fill
        there, or a segment deleted on the mirror and still listed as known on
        the primary) asks both for a full listing at their next refresh, so the
        lag is exact again one refresh later instead of one rescan later.
        """
        p, m = self.primary.listing, mirror.listing
        if p is None or m is None or not self.primary.reachable or not mirror.reachable:
            return None
        token = (self.primary.version, mirror.version)
        cached = self._lag_memo.get(mirror.label)
        if cached is not None and cached[0] == token:
            return cached[1]
        missing = 0
        oldest: float | None = None
        for key, mtime in p.mtimes.items():
            # the primary's own bookkeeping (mirrors/<id>/pending|deletes|down) is never
            # copied: counted, one mirror's records were lag of every mirror
            if key not in m.mtimes and is_mirrored_key(key):
                missing += 1
                oldest = mtime if oldest is None else min(oldest, mtime)
                if mirror.known_below(key):
                    mirror.full_requested = self.primary.full_requested = True
        result = (missing, oldest)
        self._lag_memo[mirror.label] = (token, result)
        return result
