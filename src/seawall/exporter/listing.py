"""Incremental listing of an object-storage repository for the exporter.

Why: a full listing costs one ``ListObjectsV2`` request per 1,000 keys, and
the WAL archive is most of a repository's keys (100,000 segments: 100
requests at every refresh) while almost none of them change between two
refreshes. WAL keys are ordered: ``postgresql/wal/<cluster>/<TTTTTTTTLLLLLLLL>/
<walname>-<sha>…`` sorts by timeline and segment, and PostgreSQL archives
segment after segment, so what is new sorts after the last segment seen.

How: the listing is one sweep over the repository in key order
(``StartAfter``, pages of 1,000 keys). Each cluster's *known region* — its
keys from the first up to the last segment of the previous listing — is not
listed again: when a page ends inside a known region, the sweep yields the
rest of the region from memory and continues with ``StartAfter`` its last
key. Everything else (the catalog, ``archive.json``, history files, new
segments, new clusters) is listed at every refresh. A page is authoritative
for the keys between its first and its last: a known key it does not name
is gone. So the oldest segments that retention deletes (the start of a
region, where the sweep enters it) disappear at the next refresh, and a
manifest that ``verify`` rewrites in place is seen at once — manifests are
never skipped, because they change in place and do not order by time
within a backup's directory.

What the skip cannot see until the next full listing (every
``--rescan-interval``): a segment deleted or written *inside* a region
beyond its first page (a hole punched by hand, a straggler from an old
timeline, ``seawall sync`` filling a mirror's gap). The mirror-lag
computation asks for a full listing at once when a missing key falls
inside such a region (:meth:`seawall.exporter.repositories.Repositories.lag`),
so a lag never waits for the rescan to close.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from seawall.storage.base import ObjectInfo
from seawall.walcore.layout import WAL_ROOT, is_hex

_ROOT = f"{WAL_ROOT}/"
_SEGMENT_DIR_LEN = 16  # TTTTTTTTLLLLLLLL

#: one page of a listing: (the last key it covered, "" if none; its objects)
Page = tuple[str, list[ObjectInfo]]


@runtime_checkable
class PagedListing(Protocol):
    """A store listed in key order by pages, from any key on (object storage)."""

    def list_pages_after(self, start_after: str = "") -> Iterator[Page]: ...


@dataclass(frozen=True)
class Region:
    """A cluster's keys up to its last segment, as the previous listing saw them."""

    prefix: str  # postgresql/wal/<cluster>/
    last: str  # the last key of a segment directory
    objects: list[ObjectInfo]  # every object with prefix <= key <= last, in key order
    keys: list[str]  # their keys (for bisect)

    def after(self, key: str) -> list[ObjectInfo]:
        """The region's objects with keys after ``key``."""
        return self.objects[bisect_right(self.keys, key) :]


def cluster_prefix(key: str) -> str | None:
    """``postgresql/wal/<cluster>/`` of a key below a cluster, else None."""
    if not key.startswith(_ROOT):
        return None
    cluster, sep, _ = key[len(_ROOT) :].partition("/")
    if not sep or not cluster or cluster.startswith("."):
        return None
    return f"{_ROOT}{cluster}/"


def wal_regions(objects: list[ObjectInfo]) -> dict[str, Region]:
    """The known region of every cluster in a listing (clusters without segments: none)."""
    below: dict[str, list[ObjectInfo]] = {}
    last: dict[str, str] = {}
    for info in objects:
        prefix = cluster_prefix(info.key)
        if prefix is None:
            continue
        below.setdefault(prefix, []).append(info)
        parts = info.key[len(prefix) :].split("/")
        in_segment_dir = len(parts) == 2 and len(parts[0]) == _SEGMENT_DIR_LEN
        if in_segment_dir and is_hex(parts[0]) and info.key > last.get(prefix, ""):
            last[prefix] = info.key
    regions: dict[str, Region] = {}
    for prefix, end in last.items():
        inside = sorted((o for o in below[prefix] if o.key <= end), key=lambda o: o.key)
        regions[prefix] = Region(prefix, end, inside, [o.key for o in inside])
    return regions


def sweep(
    pages_after: Callable[[str], Iterator[Page]], regions: dict[str, Region]
) -> tuple[list[ObjectInfo], int]:
    """Every object of the repository in key order, listing only what lies outside
    ``regions`` (no regions: a full listing); and the number of requests made."""
    out: list[ObjectInfo] = []
    requests = 0
    after = ""
    while True:
        for last, objects in pages_after(after):
            requests += 1
            out.extend(objects)
            prefix = cluster_prefix(last)
            region = regions.get(prefix) if prefix is not None else None
            if region is not None and last < region.last:
                out.extend(region.after(last))
                after = region.last
                break  # closes the generator: no request for the rest of the region
        else:
            return out, requests
