"""The exporter per repository, against a real S3 server (SeaweedFS ``weed mini``).

The catalogs are built on disk with the same builders as every exporter
test, then uploaded key for key (same layout), so an S3 repository is
compared with the very directory it was copied from: the metrics must not
depend on where the repository lives.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.repositories import Repositories
from seawall.exporter.wal_watch import WalWatcher
from seawall.ports import free_loopback_port
from seawall.storage.factory import open_storage
from seawall.storage.s3.backend import S3Storage
from seawall.storage.s3.retry import RetryPolicy
from tests.conftest import SEAWALL
from tests.integration.exporter.builders import (
    T0,
    manifest_path,
    segment,
    write_archive_info,
    write_backup,
    write_base,
    write_drill,
    write_rejected,
    write_wal,
)
from tests.integration.storage.conftest import new_bucket, own_s3_server, s3_server
from tests.support.s3server import S3Server

__all__ = ["own_s3_server", "s3_server"]  # fixtures used by name below

NOW = (T0 + timedelta(days=1)).timestamp()
APP = {"engine": "postgresql", "kind": "logical", "series": "app"}


def s3_storage(
    server: S3Server, url: str, deadline: float = 120.0, page_size: int = 1000
) -> S3Storage:
    return S3Storage(
        url,
        endpoint_url=server.endpoint,
        region="us-east-1",
        access_key=server.access_key,
        secret_key=server.secret_key,
        retry=RetryPolicy(deadline=deadline),
        page_size=page_size,
    )


def upload(root: Path, storage: S3Storage, only: Callable[[str], bool] = lambda k: True) -> int:
    """Copy every file of a local repository to ``storage`` under the same key."""
    n = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        if key.startswith(".") or not only(key):
            continue
        storage.write_bytes(key, path.read_bytes())
        n += 1
    return n


def catalog(root: Path) -> None:
    write_backup(root, "postgresql", "logical", "app", finished=T0, verified=True, size=3000)
    write_backup(
        root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=1), status="failed"
    )
    write_backup(root, "qdrant", "snapshot", "docs", finished=T0, size=2000)
    write_base(root, "main", finished=T0, start_wal=segment(1, 1), stop_wal=segment(1, 1))
    write_archive_info(root, "main")
    for segno in (1, 2, 4):
        write_wal(root, "main", segment(1, segno), mtime=T0.timestamp() + segno)
    write_drill(root, "postgresql", "app", finished=T0, ok=True, rto=120.0, rpo=30.0)


def samples(reg: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in reg.collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# what depends on where the repository lives, not on its content
PLACE_BOUND = (
    "seawall_storage_",  # statvfs of a local volume only
    "seawall_repository_",  # labelled with the location
    "seawall_scrape_duration_seconds",
    # a segment's archive time is its file's mtime on disk, its LastModified on
    # S3 (the upload time here; checked separately below)
    "seawall_wal_last_archived_timestamp_seconds",
    "seawall_wal_newest_segment_age_seconds",
    "seawall_pitr_",
)
WAL_COMPAT = ("postgres_backup_last_success_timestamp", (("database", "main"), ("type", "wal")))


def test_s3_repository_serves_the_same_metrics_as_its_local_copy(
    s3_server: S3Server, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    catalog(root)
    bad = write_backup(root, "qdrant", "snapshot", "docs", finished=T0 + timedelta(hours=2))
    manifest_path(root, bad).write_text("{ not json")  # counted as an error both ways
    url = f"s3://{new_bucket(s3_server)}/prod"
    storage = s3_storage(s3_server, url)
    before = time.time()
    uploaded = upload(root, storage)
    after = time.time()

    watcher = WalWatcher(root, watch=False)
    local = samples(make_registry(SeawallCollector(root, wal=watcher, clock=lambda: NOW)))
    remote_collector = SeawallCollector(storage, clock=lambda: NOW)
    remote = samples(make_registry(remote_collector))

    def content(s: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[object, float]:
        return {k: v for k, v in s.items() if not k[0].startswith(PLACE_BOUND) and k != WAL_COMPAT}

    assert content(remote) == content(local)
    assert len(content(remote)) > 40
    assert remote[("seawall_catalog_errors", ())] == 1
    assert remote[("seawall_wal_gaps", (("cluster", "main"),))] == 1
    assert before - 1 <= remote[WAL_COMPAT] <= after + 1
    cl = (("cluster", "main"),)
    assert remote[("seawall_wal_last_archived_timestamp_seconds", cl)] == remote[WAL_COMPAT]
    assert remote[("seawall_pitr_window_seconds", cl)] >= 0
    label = (("repository", url),)
    assert remote[("seawall_repository_reachable", label)] == 1
    files = [p for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert remote[("seawall_repository_objects", label)] == uploaded == len(files)
    stored = sum(p.stat().st_size for p in files)
    assert remote[("seawall_repository_stored_bytes", label)] == stored
    app = (("engine", "postgresql"), ("kind", "logical"), ("repository", url), ("series", "app"))
    assert (
        remote[("seawall_repository_backup_last_success_timestamp_seconds", app)]
        == (local[("seawall_backup_last_success_timestamp_seconds", tuple(sorted(APP.items())))])
    )


def test_unchanged_manifests_are_not_fetched_again(s3_server: S3Server, tmp_path: Path) -> None:
    root = tmp_path / "backups"
    catalog(root)
    storage = s3_storage(s3_server, f"s3://{new_bucket(s3_server)}")
    upload(root, storage)
    repos = Repositories.of(("s3", storage), interval=0.0)  # every scrape lists
    collector = SeawallCollector(storage, repositories=repos, clock=lambda: NOW)
    reg = make_registry(collector)
    assert reg.get_sample_value("seawall_backups", APP) == 1
    listed = repos.primary.catalog
    assert listed is not None
    parsed = listed.parsed
    assert parsed == 5  # 4 backups (one failed) and a drill record
    reg.get_sample_value("seawall_backups", APP)
    assert listed.parsed == parsed, "an unchanged manifest was fetched again"
    newer = tmp_path / "newer"
    write_backup(newer, "postgresql", "logical", "app", finished=T0 + timedelta(hours=2))
    upload(newer, storage)
    assert reg.get_sample_value("seawall_backups", APP) == 2
    assert listed.parsed == parsed + 1
    # retention deleted a WAL segment: the next listing shows it gone
    cl = {"cluster": "main"}
    assert reg.get_sample_value("seawall_wal_segments", cl) == 3
    (first,) = [k.key for k in storage.list("postgresql/wal") if segment(1, 1) in k.key]
    storage.delete(first)
    assert reg.get_sample_value("seawall_wal_segments", cl) == 2
    assert listed.parsed == parsed + 1


def test_scrapes_never_list_when_refreshing_in_the_background(
    s3_server: S3Server, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    catalog(root)
    storage = s3_storage(s3_server, f"s3://{new_bucket(s3_server)}")
    upload(root, storage)
    repos = Repositories.of(("s3", storage), interval=3600.0)
    collector = SeawallCollector(storage, repositories=repos, clock=lambda: NOW)
    reg = make_registry(collector)
    repos.start()
    try:
        deadline = time.monotonic() + 60
        while repos.primary.reachable is None and time.monotonic() < deadline:
            time.sleep(0.05)
        refreshes = repos.primary.refreshes
        calls: list[str] = []  # every S3 request this client makes from now on
        storage.client.meta.events.register(
            "before-call.s3", lambda model, **_: calls.append(model.name)
        )
        for _ in range(5):
            assert reg.get_sample_value("seawall_backups", APP) == 1
            generate_latest(reg)
        assert repos.primary.refreshes == refreshes == 1
        assert calls == [], f"a scrape made S3 requests: {calls}"
        repos.primary.refresh()  # the counter is real: a listing is seen
        assert "ListObjectsV2" in calls
    finally:
        repos.stop()


def test_mirror_lags_then_catches_up(s3_server: S3Server, tmp_path: Path) -> None:
    """Local primary, S3 mirror: objects written to the primary only show as lag
    (count and age of the oldest), and copying them closes it."""
    root = tmp_path / "backups"
    catalog(root)
    mirror_url = f"s3://{new_bucket(s3_server)}/mirror"
    mirror = s3_storage(s3_server, mirror_url)
    # the mirror holds everything but the WAL archive
    upload(root, mirror, only=lambda k: not k.startswith("postgresql/wal/"))
    primary = open_storage(root)
    repos = Repositories.of(
        (str(root), primary), [(mirror_url, mirror)], interval=0.0, clock=lambda: NOW
    )
    reg = make_registry(SeawallCollector(root, repositories=repos, clock=lambda: NOW))
    label = {"repository": mirror_url}
    wal_files = sorted(p for p in (root / "postgresql" / "wal").rglob("*") if p.is_file())
    assert len(wal_files) == 4  # archive.json and three segments
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 4
    oldest = min(p.stat().st_mtime for p in wal_files)
    assert reg.get_sample_value("seawall_mirror_lag_seconds", label) == pytest.approx(NOW - oldest)
    assert reg.get_sample_value("seawall_repository_reachable", label) == 1
    assert reg.get_sample_value("seawall_repository_info", {**label, "role": "mirror"}) == 1
    assert (
        reg.get_sample_value(
            "seawall_repository_info", {"repository": str(root), "role": "primary"}
        )
        == 1
    )
    # the mirror holds the backups: its newest per series is the primary's
    assert reg.get_sample_value(
        "seawall_repository_backup_last_success_timestamp_seconds", {**label, **APP}
    ) == reg.get_sample_value("seawall_backup_last_success_timestamp_seconds", APP)

    upload(root, mirror, only=lambda k: k.startswith("postgresql/wal/"))  # `sync`, by hand
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 0
    assert reg.get_sample_value("seawall_mirror_lag_seconds", label) == 0
    # a new backup on the primary only: lag again, and its age is the new object's
    newer = write_backup(root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=3))
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 2  # artifact + manifest
    assert reg.get_sample_value(
        "seawall_repository_backup_last_success_timestamp_seconds", {**label, **APP}
    ) < reg.get_sample_value("seawall_backup_last_success_timestamp_seconds", APP)
    assert newer.status == "success"
    # objects only in the mirror (pruned on the primary, not yet on the mirror) are no lag
    shutil.rmtree(root / "qdrant")
    upload(root, mirror)
    assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 0


def test_a_repository_that_is_down_reads_zero_and_the_scrape_answers(
    own_s3_server: S3Server, tmp_path: Path
) -> None:
    """SIGKILL the S3 server: a mirror on it reads reachable 0, its lag absent
    (unknown), the local primary's metrics unchanged and the scrape still fast;
    an S3 primary on it reads unreachable too and keeps serving its last
    catalog (age alerts keep judging it). Back up: reachable 1 again."""
    server = own_s3_server
    started: list[Repositories] = []
    try:
        root = tmp_path / "backups"
        catalog(root)
        mirror_url = f"s3://{new_bucket(server)}"
        mirror = s3_storage(server, mirror_url, deadline=1.0)
        upload(root, mirror)
        repos = Repositories.of(
            (str(root), open_storage(root)), [(mirror_url, mirror)], interval=0.2
        )
        reg = make_registry(SeawallCollector(root, repositories=repos, clock=lambda: NOW))
        # the same bucket as the only repository of a second exporter
        s3_repos = Repositories.of((mirror_url, mirror), interval=0.2)
        s3_reg = make_registry(SeawallCollector(mirror, repositories=s3_repos, clock=lambda: NOW))
        for r in (repos, s3_repos):
            r.start()
            started.append(r)
        label = {"repository": mirror_url}
        wait_for(lambda: reg.get_sample_value("seawall_repository_reachable", label) == 1)
        assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 0
        assert s3_reg.get_sample_value("seawall_backup_dir_accessible") == 1
        assert s3_reg.get_sample_value("seawall_backups", APP) == 1

        server.kill()
        wait_for(lambda: reg.get_sample_value("seawall_repository_reachable", label) == 0)
        t0 = time.monotonic()
        body = generate_latest(reg).decode()
        assert time.monotonic() - t0 < 5, "a scrape waited for the unreachable mirror"
        assert f'seawall_repository_reachable{{repository="{mirror_url}"}} 0.0' in body
        assert "seawall_mirror_lag_objects{" not in body  # unknown, not zero
        assert reg.get_sample_value("seawall_backups", APP) == 1
        assert reg.get_sample_value("seawall_repository_reachable", {"repository": str(root)}) == 1
        # never a credential in the metrics
        assert server.access_key not in body and server.secret_key not in body
        wait_for(lambda: s3_reg.get_sample_value("seawall_repository_reachable", label) == 0)
        t0 = time.monotonic()
        assert s3_reg.get_sample_value("seawall_backup_dir_accessible") == 0
        assert s3_reg.get_sample_value("seawall_backups", APP) == 1, "the last catalog is kept"
        assert time.monotonic() - t0 < 5, "a scrape waited for the unreachable primary"

        server.start()
        wait_for(lambda: reg.get_sample_value("seawall_repository_reachable", label) == 1)
        assert reg.get_sample_value("seawall_mirror_lag_objects", label) == 0
        wait_for(lambda: s3_reg.get_sample_value("seawall_backup_dir_accessible") == 1)
    finally:
        for r in started:
            r.stop()


def test_a_scrape_after_the_server_died_reads_only_the_last_listing(
    own_s3_server: S3Server, tmp_path: Path
) -> None:
    """Between a server's death and the next listing a scrape must not touch it:
    the rejected runs come from the listing too (they were listed at every
    scrape, and the scrape failed with the server's error)."""
    server = own_s3_server
    root = tmp_path / "backups"
    catalog(root)
    write_rejected(root, "postgresql", "logical", "nosuch", finished=T0)
    url = f"s3://{new_bucket(server)}"
    storage = s3_storage(server, url, deadline=1.0)
    upload(root, storage)
    repos = Repositories.of((url, storage), interval=3600.0)  # listed once, lazily
    reg = make_registry(SeawallCollector(storage, repositories=repos, clock=lambda: NOW))
    local = make_registry(SeawallCollector(root, clock=lambda: NOW))
    assert reg.get_sample_value("seawall_rejected_runs") == 1
    assert reg.get_sample_value("seawall_rejected_run_last_timestamp_seconds") == (
        local.get_sample_value("seawall_rejected_run_last_timestamp_seconds")
    )
    server.kill()
    body = generate_latest(reg).decode()  # raised StorageError before the fix
    assert "seawall_rejected_runs 1.0" in body
    assert "seawall_catalog_errors 0.0" in body
    assert repos.primary.refreshes == 1


def wait_for(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_cli_exporter_on_s3_with_a_lagging_local_mirror(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """`seawall exporter` with BACKUP_DIR=s3://… and MIRRORS=<dir>: the settings wire
    the factory, the credentials come from the AWS variables, and the mirror's lag
    shows; the secret appears nowhere in the metrics."""
    root = tmp_path / "backups"
    catalog(root)
    url = f"s3://{new_bucket(s3_server)}/prod"
    upload(root, s3_storage(s3_server, url))
    mirror = tmp_path / "mirror"
    shutil.copytree(root, mirror)
    shutil.rmtree(mirror / "qdrant")  # two objects the mirror misses
    port = free_loopback_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "BACKUP_DIR": url,
        "MIRRORS": str(mirror),
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": "us-east-1",
        "LOG_FORMAT": "text",
    }
    log = tmp_path / "exporter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [SEAWALL, "exporter", "--listen", f"127.0.0.1:{port}", "--refresh-interval", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def metrics() -> str:
            if proc.poll() is not None:
                raise AssertionError(log.read_text())
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                return ""

        lag = f'seawall_mirror_lag_objects{{repository="{mirror}"}} 2.0'
        wait_for(lambda: lag in metrics())
        body = metrics()
        assert f'seawall_repository_reachable{{repository="{url}"}} 1.0' in body
        assert f'seawall_repository_info{{repository="{mirror}",role="mirror"}} 1.0' in body
        assert 'seawall_backups{engine="postgresql",kind="logical",series="app"} 1.0' in body
        assert 'seawall_wal_segments{cluster="main"} 3.0' in body
        assert s3_server.secret_key not in body and s3_server.secret_key not in log.read_text()
        # the S3 primary is listed by itself (not through its mirrors): incrementally
        assert f"listing {url} every 1s (incremental" in log.read_text()
        shutil.copytree(root / "qdrant", mirror / "qdrant")  # the mirror catches up
        wait_for(lambda: f'seawall_mirror_lag_objects{{repository="{mirror}"}} 0.0' in metrics())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
