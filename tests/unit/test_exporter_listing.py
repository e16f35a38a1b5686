"""The sweep of exporter/listing.py over an in-memory key space (S3's order, 3-key pages).

The integration tests run it on SeaweedFS; these pin the edge cases of the
jump: two clusters, a page ending exactly on a region's last key, keys of
the known range deleted at its start or in its middle, new clusters.
"""

from __future__ import annotations

from collections.abc import Iterator

from seawall.exporter.listing import Page, sweep, wal_regions
from seawall.storage.base import ObjectInfo

PAGE = 3


class Bucket:
    def __init__(self, keys: list[str]) -> None:
        self.keys = set(keys)

    def pages_after(self, start_after: str) -> Iterator[Page]:
        keys = sorted(k for k in self.keys if k > start_after)
        for i in range(0, max(len(keys), 1), PAGE):
            chunk = keys[i : i + PAGE]
            yield (chunk[-1] if chunk else ""), [ObjectInfo(k, 1, 0.0) for k in chunk]

    def full(self) -> list[str]:
        return sorted(self.keys)


def seg(cluster: str, n: int) -> str:
    return f"postgresql/wal/{cluster}/0000000100000000/{n:024X}-{'a' * 40}.zst"


def layout() -> list[str]:
    return [
        "drills/postgresql/app/20261120T020000Z-0001/manifest.json",
        "postgresql/logical/app/20261120T020000Z-0001/dump.zst",
        "postgresql/logical/app/20261120T020000Z-0001/manifest.json",
        *(seg("a", n) for n in range(1, 11)),
        "postgresql/wal/a/archive.json",
        "postgresql/wal/a/history/00000002.history-" + "b" * 40 + ".zst",
        *(seg("b", n) for n in range(1, 8)),
        "postgresql/wal/b/archive.json",
        "qdrant/snapshot/docs/20261120T020000Z-0001/manifest.json",
    ]


def listing(bucket: Bucket, previous: list[str] | None) -> tuple[list[str], int]:
    regions = wal_regions([ObjectInfo(k, 1, 0.0) for k in previous]) if previous else {}
    objects, requests = sweep(bucket.pages_after, regions)
    return [o.key for o in objects], requests


def test_regions_end_at_the_last_segment_of_each_cluster() -> None:
    regions = wal_regions([ObjectInfo(k, 1, 0.0) for k in layout()])
    assert sorted(regions) == ["postgresql/wal/a/", "postgresql/wal/b/"]
    assert regions["postgresql/wal/a/"].last == seg("a", 10)
    assert len(regions["postgresql/wal/a/"].objects) == 10
    assert regions["postgresql/wal/b/"].last == seg("b", 7)


def test_unchanged_the_sweep_equals_a_full_listing_with_fewer_requests() -> None:
    bucket = Bucket(layout())
    first, full_requests = listing(bucket, None)
    assert first == bucket.full() and full_requests == -(-len(first) // PAGE)
    again, requests = listing(bucket, first)
    assert again == bucket.full()
    assert requests < full_requests


def test_new_segments_and_clusters_and_a_deleted_start_are_seen_at_once() -> None:
    bucket = Bucket(layout())
    first, _ = listing(bucket, None)
    bucket.keys |= {seg("a", 11), seg("b", 8), seg("c", 1), "postgresql/wal/c/archive.json"}
    bucket.keys -= {seg("a", 1), seg("a", 2), seg("a", 3), seg("a", 4)}  # retention
    second, _ = listing(bucket, first)
    assert second == bucket.full()


def test_a_hole_inside_the_known_range_waits_for_the_full_listing() -> None:
    bucket = Bucket(layout())
    first, _ = listing(bucket, None)
    bucket.keys.discard(seg("a", 8))  # beyond the first page entering cluster a
    stale, _ = listing(bucket, first)
    assert seg("a", 8) in stale
    assert sorted(set(stale) - {seg("a", 8)}) == bucket.full()
    assert listing(bucket, None)[0] == bucket.full()  # the full listing sees it


def test_a_page_ending_on_the_last_known_key_continues_without_a_jump() -> None:
    keys = [seg("a", n) for n in range(1, PAGE + 1)] + ["zz/manifest.json"]
    bucket = Bucket(keys)
    first, _ = listing(bucket, None)
    again, requests = listing(bucket, first)
    assert again == bucket.full() and requests == 2
