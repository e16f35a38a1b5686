"""The exporter's incremental listing of object storage, on a real S3 server.

Every refresh is compared with a full listing of the same bucket made at the
same moment (a second exporter with ``rescan_interval=0``): the metrics must
be the same, while the ListObjectsV2 requests — counted by a botocore hook
on the client, i.e. what the server was really asked — drop to the pages
outside the WAL segments already known. Pages are 4 keys here (``page_size``)
so that 40 segments span ten of them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client.registry import CollectorRegistry

from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.repositories import Repositories, RepositoryView
from seawall.storage.s3.backend import S3Storage
from tests.integration.exporter.builders import (
    T0,
    segment,
    write_archive_info,
    write_backup,
    write_base,
    write_wal,
)
from tests.integration.exporter.test_repositories_s3 import NOW, s3_storage, samples, upload
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.support.s3server import S3Server

__all__ = ["s3_server"]  # the fixture, used by name below

PAGE = 4
SEGMENTS = 40
CL = {"cluster": "main"}
#: when a scrape or a listing happened, not what it saw
WHEN = ("seawall_scrape_duration_seconds", "seawall_repository_last_refresh_timestamp_seconds")


def paged_storage(server: S3Server, url: str) -> S3Storage:
    return s3_storage(server, url, deadline=60.0, page_size=PAGE)


def archive(root: Path, segnos: range | list[int], at: float = 0.0) -> None:
    for segno in segnos:
        write_wal(root, "main", segment(1, segno), mtime=T0.timestamp() + at + segno)


def repository(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0, verified=True, size=3000)
    write_base(root, "main", finished=T0, start_wal=segment(1, 1), stop_wal=segment(1, 1))
    write_archive_info(root, "main")
    archive(root, range(1, SEGMENTS + 1))


class Counted:
    """The ListObjectsV2 requests a storage's client sends."""

    def __init__(self, storage: S3Storage) -> None:
        self.lists = 0
        storage.client.meta.events.register("before-call.s3.ListObjectsV2", self._count)

    def _count(self, **_: object) -> None:
        self.lists += 1

    def since(self, mark: int) -> int:
        return self.lists - mark


def exporter(
    storage: S3Storage, label: str, rescan: float
) -> tuple[Repositories, CollectorRegistry]:
    repos = Repositories.of((label, storage), interval=3600.0, rescan_interval=rescan)
    reg = make_registry(SeawallCollector(storage, repositories=repos, clock=lambda: NOW))
    return repos, reg


def same_as_a_full_listing(
    server: S3Server, url: str, label: str, reg: CollectorRegistry
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The incremental exporter's samples, checked equal to a fresh full listing's."""
    full_repos, full_reg = exporter(paged_storage(server, url), label, rescan=0.0)
    full_repos.primary.refresh()
    assert full_repos.primary.full_listings == 1

    def content(reg: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {k: v for k, v in samples(reg).items() if k[0] not in WHEN}

    got = content(reg)
    assert got == content(full_reg)
    return got


def stored(server: S3Server, root: Path, prefix: str = "") -> tuple[str, S3Storage, int, Counted]:
    """The repository built under ``root``, uploaded to a new bucket: (url, storage,
    objects uploaded, the counter of its listing requests)."""
    repository(root)
    url = f"s3://{new_bucket(server)}{prefix}"
    storage = paged_storage(server, url)
    objects = upload(root, storage)
    return url, storage, objects, Counted(storage)


def refresh(view: RepositoryView, counted: Counted) -> int:
    mark = counted.lists
    view.refresh()
    assert view.reachable, view.error
    return counted.since(mark)


def test_refreshes_list_only_what_lies_after_the_known_segments(
    s3_server: S3Server, tmp_path: Path
) -> None:
    url, storage, objects, counted = stored(s3_server, tmp_path / "backups", "/prod")
    repos, reg = exporter(storage, url, rescan=3600.0)
    view = repos.primary

    first = refresh(view, counted)  # nothing known yet: a full listing
    assert first == -(-objects // PAGE) == view.list_requests  # ceil: every page, once
    assert view.full_listings == 1
    m = same_as_a_full_listing(s3_server, url, url, reg)
    assert m[("seawall_wal_segments", (("cluster", "main"),))] == SEGMENTS

    # unchanged: the catalog pages, the page entering the segments, the tail
    unchanged = refresh(view, counted)
    assert unchanged <= 4, unchanged
    assert unchanged * 3 <= first
    same_as_a_full_listing(s3_server, url, url, reg)

    # new segments (they sort after the known ones), a new backup, a new cluster
    newer = tmp_path / "newer"
    archive(newer, [SEGMENTS + 1, SEGMENTS + 2], at=3600)
    write_backup(newer, "postgresql", "logical", "app", finished=T0 + timedelta(hours=2))
    write_archive_info(newer, "other")
    write_wal(newer, "other", segment(1, 7))
    upload(newer, storage)
    grown = refresh(view, counted)
    assert grown <= 6, grown
    m = same_as_a_full_listing(s3_server, url, url, reg)
    assert m[("seawall_wal_segments", (("cluster", "main"),))] == SEGMENTS + 2
    assert m[("seawall_wal_segments", (("cluster", "other"),))] == 1
    assert (
        m[("seawall_backups", (("engine", "postgresql"), ("kind", "logical"), ("series", "app")))]
        == 2
    )

    # retention deletes the oldest segments: where the listing enters the known
    # segments it is authoritative, so they are gone at the next refresh already
    for segno in (1, 2, 3, 4, 5, 6):
        (key,) = [o.key for o in storage.list("postgresql/wal/main") if segment(1, segno) in o.key]
        storage.delete(key)
    refresh(view, counted)
    m = same_as_a_full_listing(s3_server, url, url, reg)
    assert m[("seawall_wal_segments", (("cluster", "main"),))] == SEGMENTS + 2 - 6

    # over five refreshes, no full listing and a few requests each
    mark = counted.lists
    for _ in range(5):
        assert refresh(view, counted) <= 5
    assert counted.since(mark) * 3 <= 5 * first
    assert view.full_listings == 1


def test_a_segment_deleted_inside_the_known_range_is_seen_at_the_full_listing(
    s3_server: S3Server, tmp_path: Path
) -> None:
    url, storage, _, counted = stored(s3_server, tmp_path / "backups")
    repos, reg = exporter(storage, url, rescan=900.0)
    view = repos.primary
    now = [1000.0]
    view.monotonic = lambda: now[0]
    refresh(view, counted)
    assert reg.get_sample_value("seawall_wal_gaps", CL) == 0

    (key,) = [o.key for o in storage.list("postgresql/wal") if segment(1, 20) in o.key]
    storage.delete(key)  # a hole punched by hand, far inside the known segments
    now[0] += 899.0
    incremental = refresh(view, counted)
    assert view.full_listings == 1
    # documented: not seen before the full listing (ADR 0014, docs/exporter.md)
    assert reg.get_sample_value("seawall_wal_segments", CL) == SEGMENTS
    now[0] += 1.0  # --rescan-interval has passed
    full = refresh(view, counted)
    assert view.full_listings == 2
    assert full > incremental
    assert reg.get_sample_value("seawall_wal_segments", CL) == SEGMENTS - 1
    assert reg.get_sample_value("seawall_wal_gaps", CL) == 1
    assert reg.get_sample_value("seawall_wal_missing_segments", CL) == 1
    same_as_a_full_listing(s3_server, url, url, reg)


def test_mirror_lag_stays_exact_when_sync_fills_a_gap_inside_the_known_range(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """A mirror missed segment 20 (it was down), later segments reached it: the gap
    lies inside the mirror's known range, where an incremental listing does not
    look. The lag asks for a full listing, so `sync` closing the gap shows at
    the next refresh, not at the next rescan; a new segment that reached the
    primary only (the tail) is lag that costs no full listing."""
    root = tmp_path / "backups"
    repository(root)
    primary_url = f"s3://{new_bucket(s3_server)}/primary"
    mirror_url = f"s3://{new_bucket(s3_server)}/mirror"
    primary, mirror = paged_storage(s3_server, primary_url), paged_storage(s3_server, mirror_url)
    upload(root, primary)
    upload(root, mirror, only=lambda k: segment(1, 20) not in k)
    repos = Repositories.of(
        (primary_url, primary), [(mirror_url, mirror)], interval=3600.0, rescan_interval=3600.0
    )
    reg = make_registry(SeawallCollector(primary, repositories=repos, clock=lambda: NOW))
    label = {"repository": mirror_url}
    views = list(repos)

    def refresh_all() -> None:
        for v in views:
            v.refresh()
            assert v.reachable, v.error

    refresh_all()
    refresh_all()  # incremental now: both know their segments
    assert [v.full_listings for v in views] == [1, 1]
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 1
    assert all(v.full_requested for v in views)

    upload(root, mirror, only=lambda k: segment(1, 20) in k)  # `sync`, by hand
    refresh_all()
    assert [v.full_listings for v in views] == [2, 2]
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 0
    assert reg.get_sample_value("seawall_mirror_lag_seconds", label) == 0

    # the tail: a new segment on the primary only is lag, without a full listing
    newer = tmp_path / "newer"
    archive(newer, [SEGMENTS + 1], at=3600)
    upload(newer, primary)
    refresh_all()
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 1
    assert not any(v.full_requested for v in views)
    upload(newer, mirror)
    refresh_all()
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 0
    assert [v.full_listings for v in views] == [2, 2]
