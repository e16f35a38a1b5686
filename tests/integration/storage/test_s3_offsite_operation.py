"""Off-site operation on a real SeaweedFS, as an operator meets it: more than a
page of anything, a mirror whose copy rotted at rest, a mirror holding what the
primary lost. Each test here reproduced a defect before its fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seawall.errors import StorageError
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.repositories import Repositories
from seawall.storage.local import LocalStorage
from seawall.storage.mirror import Mirror, MirroredStorage
from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.conftest import SEAWALL, run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, db_state, seawall_env
from tests.integration.storage.test_mirrors_s3 import (
    MIB,
    bucket_keys,
    in_progress_uploads,
    only_manifest,
    s3_env,
)
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server


def _storage(server: S3Server, bucket: str, **kw: object) -> S3Storage:
    args: dict[str, object] = {
        "endpoint_url": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "retry": RetryPolicy(deadline=30.0),
    }
    args.update(kw)
    return S3Storage(f"s3://{bucket}/repo", **args)  # type: ignore[arg-type]


def test_more_than_a_page_of_abandoned_uploads_are_all_listed_and_aborted(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    """1,050 uploads abandoned by killed runs: every one is a temporary prune can delete.

    SeaweedFS pages ListMultipartUploads by upload id (``NextUploadIdMarker``,
    no ``NextKeyMarker``); the listing stopped after the first 1,000, so the
    rest were never cleaned up by prune (the primary) or sync (a mirror).
    """
    bucket = bucket_factory(s3_server)
    admin = s3_server.client()
    keys = [f"repo/wal/16/{i:024X}.zst" for i in range(1050)]
    for key in keys:
        admin.create_multipart_upload(Bucket=bucket, Key=key)
    storage = _storage(s3_server, bucket)  # the default page: S3's maximum, 1,000

    partials = list(storage.list_partials())
    assert len(partials) == len(keys)
    assert {p.key.rsplit(".partial-", 1)[0] for p in partials} == {k[5:] for k in keys}
    assert len([i for i, partial in storage.walk("wal") if partial]) == len(keys)

    for p in partials:
        storage.delete(p.key)
    assert list(storage.list_partials()) == []
    left = admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert left == []


def test_sync_deep_finds_and_repairs_a_mirror_copy_rotted_at_rest(
    pg: PgCluster,
    backup_dir: Path,
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    """A flipped byte in the mirror's dump (same size): ``sync`` compared sizes only
    and called the mirror complete; the DR copy was unusable and nothing said so.
    ``sync --deep`` reads the mirror's copies, names the damaged one, copies it
    again from the (checked) primary; then the primary loses the dump: sync names
    the object the mirror alone still holds, keeps it, and restore reads it."""
    bucket = bucket_factory(s3_server)
    mirror = f"s3://{bucket}/repo"
    pg.psql("CREATE DATABASE shop")
    pg.psql(SMALL_SQL, "shop")
    expected = db_state(pg, "shop")
    env = seawall_env(pg, backup_dir, MIRRORS=mirror, **s3_env(s3_server))
    res = run_seawall(["postgres", "backup", "--database", "shop"], env)
    assert res.returncode == 0, res.stderr
    m = only_manifest(backup_dir, "shop")
    dump = next(a for a in m["artifacts"] if a["role"] == "dump")
    key = f"postgresql/logical/shop/{m['id']}/{dump['name']}"
    good = (backup_dir / key).read_bytes()

    admin = s3_server.client()
    rotted = bytearray(good)
    rotted[len(rotted) // 2] ^= 0x08
    admin.put_object(Bucket=bucket, Key=f"repo/{key}", Body=bytes(rotted))

    res = run_seawall(["sync", "--deep", "--dry-run", "--json"], env)
    assert res.returncode == 0, res.stderr
    [plan] = json.loads(res.stdout)["mirrors"]
    assert [d["key"] for d in plan["damaged"]] == [key]
    assert [c["key"] for c in plan["copied"]] == [key]
    assert admin.get_object(Bucket=bucket, Key=f"repo/{key}")["Body"].read() == bytes(rotted)

    res = run_seawall(["sync", "--deep"], env)
    assert res.returncode == 0, res.stderr
    assert f"DAMAGED    {key}: sha256" in res.stdout and "mirror complete" in res.stdout
    assert admin.get_object(Bucket=bucket, Key=f"repo/{key}")["Body"].read() == good
    res = run_seawall(["sync", "--deep", "--json"], env)
    [again] = json.loads(res.stdout)["mirrors"]
    assert (again["damaged"], again["copied"], again["complete"]) == ([], [], True)

    # the primary loses the dump: sync keeps the mirror's copy and says so
    (backup_dir / key).unlink()
    res = run_seawall(["sync", "--json"], env)
    assert res.returncode == 0, res.stderr
    [lost] = json.loads(res.stdout)["mirrors"]
    assert lost["only_in_mirror"] == [key] and lost["deleted"] == []
    assert f"{key} is in the mirror only" in res.stderr
    assert admin.get_object(Bucket=bucket, Key=f"repo/{key}")["Body"].read() == good
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "shop_dr"], env)
    assert res.returncode == 0, res.stderr
    assert f"mirror {mirror}" in res.stderr
    assert db_state(pg, "shop_dr")["contents"] == expected["contents"]


def _copied_wal(report: dict[str, Any]) -> list[str]:
    return sorted(c["key"] for c in report["copied"] if c["key"].startswith("postgresql/"))


def _plain_env(repo: Path, **extra: str) -> dict[str, str]:
    skip = ("SEAWALL_", "ENCRYPTION", "AWS_", "BACKUP_DIR", "MIRRORS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(BACKUP_DIR=str(repo), **extra)
    return env


def test_a_mirror_killed_mid_sync_is_reported_and_the_next_mirror_still_synced(
    tmp_path: Path, own_s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    """The S3 mirror SIGKILLed while ``sync`` uploads to it: the run went on to list
    that mirror's leftover uploads, whose error escaped: no report was printed
    and the second mirror (a local directory) was never synced. And every
    object left waited out the retry budget before the mirror was given up."""
    server = own_s3_server
    bucket = bucket_factory(server)
    repo, second = tmp_path / "repo", tmp_path / "dr"
    mirrors = f"s3://{bucket}/repo,{second}"
    env = _plain_env(repo, MIRRORS=mirrors, MIRROR_TIMEOUT="3", **s3_env(server))
    assert run_seawall(["init"], _plain_env(repo)).returncode == 0
    primary = LocalStorage(repo)
    keys = [f"postgresql/wal/main/0000000100000000/{i:024X}-{'ab' * 20}.zst" for i in range(6)]
    for i, key in enumerate(keys):  # the first one big: a multipart upload, killed in flight
        primary.write_bytes(key, os.urandom(24 * MIB if i == 0 else 4096))
    killed = threading.Event()

    def kill_mid_upload() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed.is_set():
            with contextlib.suppress(Exception):
                if in_progress_uploads(server, bucket):
                    server.kill()  # SIGKILL while the first copy's upload is in flight
                    killed.set()
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_mid_upload, daemon=True)
    watcher.start()
    res = run_seawall(["sync", "--json"], env)
    killed.set()
    watcher.join()
    assert server.proc is None, "the S3 mirror was never seen mid-upload"
    assert res.returncode == 7, res.stderr
    s3_report, local_report = json.loads(res.stdout)["mirrors"]
    assert not s3_report["complete"]
    # one object failed, then the mirror was found dead: the rest not attempted (each
    # used to wait out MIRROR_TIMEOUT in turn: seeding a big mirror took days to fail)
    failed = s3_report["failed"]
    assert [f["key"] for f in failed] == [keys[0], ""], failed
    assert "stopped answering: 5 more object(s) not attempted" in failed[1]["error"]
    assert local_report["complete"], local_report
    assert _copied_wal(local_report) == keys
    for key in keys:
        assert (second / key).read_bytes() == (repo / key).read_bytes()

    server.start()  # same ports and data: the next sync completes the S3 mirror
    res = run_seawall(["sync", "--json"], env)
    assert res.returncode == 0, res.stderr
    s3_done, local_done = json.loads(res.stdout)["mirrors"]
    assert s3_done["complete"] and _copied_wal(s3_done) == keys
    assert local_done["copied"] == []
    assert {k for k in bucket_keys(server, bucket) if k.startswith("postgresql/")} == set(keys)


def test_a_series_lock_left_by_a_killed_run_says_the_holder_is_gone(
    pg: PgCluster, s3_server: S3Server, bucket_factory: Callable[[S3Server], str], tmp_path: Path
) -> None:
    """A backup into S3 SIGKILLed while it holds its series lease: the next run is
    refused with who held it; it said "lease ends in 294s unless renewed: wait
    for it", as for a live run. Now it says the holder is gone and that the
    lease runs out by itself (nothing to clean up)."""
    bucket = bucket_factory(s3_server)
    pg.psql("CREATE DATABASE big")
    pg.psql(
        "CREATE TABLE blob AS SELECT g, sha256(g::text::bytea) AS b "
        "FROM generate_series(1, 300000) g",
        "big",
    )
    env = seawall_env(pg, tmp_path, LOCK_TIMEOUT="1", **s3_env(s3_server))
    env["BACKUP_DIR"] = f"s3://{bucket}/repo"
    assert run_seawall(["init"], env).returncode == 0
    run = subprocess.Popen(
        [SEAWALL, "postgres", "backup", "--database", "big"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(k.startswith(".locks/") for k in bucket_keys(s3_server, bucket)):
            assert run.poll() is None and time.monotonic() < deadline, "no lease seen"
            time.sleep(0.05)
    finally:
        run.kill()
        run.wait()
    res = run_seawall(["postgres", "backup", "--database", "big"], env)
    assert res.returncode == 6, res.stderr
    [line] = res.stderr.strip().splitlines()
    assert f"pid {run.pid} on " in line and "no longer running (killed?)" in line, line
    assert "takes the lock over by itself" in line


def test_mirror_lag_counts_objects_not_the_primarys_bookkeeping(
    tmp_path: Path, own_s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    """Two mirrors, the S3 one SIGKILLed while three objects are written: the
    wrapper records them in the primary (``mirrors/<id>/pending/…`` and a ``down``
    marker). The exporter compared every primary key with each mirror, so those
    records counted as lag: the local mirror, complete, lagged 4 objects (and
    its MirrorLagging alert would fire); the S3 one lagged 7 for 3 objects."""
    server = own_s3_server
    bucket = bucket_factory(server)
    s3_url, local = f"s3://{bucket}/dr", tmp_path / "dr"
    s3_mirror = S3Storage(
        s3_url,
        endpoint_url=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        retry=RetryPolicy(deadline=2.0),
    )
    primary, second = LocalStorage(tmp_path / "repo"), LocalStorage(local)
    repo = MirroredStorage(primary, [Mirror(s3_url, s3_mirror), Mirror(str(local), second)])
    server.kill()
    keys = [f"postgresql/logical/app/20261206T0{i}0000Z-abcd/dump.pgdump.zst" for i in range(3)]
    for key in keys:
        repo.write_bytes(key, os.urandom(1024))
    assert any(i.key.startswith("mirrors/") for i in primary.list())  # the records are there
    server.start()

    repos = Repositories.of(
        (str(tmp_path / "repo"), primary), [(s3_url, s3_mirror), (str(local), second)], interval=0
    )
    reg = make_registry(SeawallCollector(tmp_path / "repo", repositories=repos))

    def lag(label: str) -> float | None:
        return reg.get_sample_value("seawall_mirror_lag_objects", {"repository": label})

    for view in repos:
        view.refresh()
    assert lag(str(local)) == 0
    assert lag(s3_url) == len(keys)
    res = run_seawall(["sync"], _plain_env(tmp_path / "repo", MIRRORS=f"{s3_url},{local}",
                                           **s3_env(server)))  # fmt: skip
    assert res.returncode == 0, res.stderr
    for view in repos:
        view.refresh()
    assert (lag(s3_url), lag(str(local))) == (0, 0)


def test_prune_killed_while_the_mirror_deletes_leaves_the_deletion_for_sync(
    pg: PgCluster,
    backup_dir: Path,
    own_s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    """prune deletes from the primary, then from each mirror. Killed -9 in
    between (the S3 mirror hangs: SIGSTOPped), the mirror kept the pruned
    backup's manifest and nothing recorded it: ``sync`` called the mirror
    complete and the DR copy still listed a backup retention had removed. The
    deletion is now recorded before the primary's, and ``sync`` applies it."""
    server = own_s3_server
    bucket = bucket_factory(server)
    mirror = f"s3://{bucket}/repo"
    pg.psql("CREATE DATABASE shop")
    pg.psql(SMALL_SQL, "shop")
    env = seawall_env(pg, backup_dir, MIRRORS=mirror, MIRROR_TIMEOUT="120", **s3_env(server))
    for _ in range(2):
        res = run_seawall(["postgres", "backup", "--database", "shop"], env)
        assert res.returncode == 0, res.stderr
    ids = sorted(p.parent.name for p in backup_dir.glob("postgresql/logical/shop/*/manifest.json"))
    old = f"postgresql/logical/shop/{ids[0]}"
    assert f"{old}/manifest.json" in bucket_keys(server, bucket)

    retention = {"RETENTION_LAST": "1", "RETENTION_DAYS": "0", "RETENTION_WEEKS": "0"}
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)  # the mirror hangs: every request waits
    try:
        prune = subprocess.Popen(
            [SEAWALL, "prune"],
            env={**env, **retention, "RETENTION_MONTHS": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while (backup_dir / old / "manifest.json").exists():  # the primary's is deleted…
            assert prune.poll() is None and time.monotonic() < deadline, "prune never deleted"
            time.sleep(0.02)
        time.sleep(0.5)  # …and the mirror's deletion is in flight, hanging
        assert prune.poll() is None
        prune.kill()
        prune.wait()
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)

    res = run_seawall(["sync", "--json"], env)
    assert res.returncode == 0, res.stderr
    [report] = json.loads(res.stdout)["mirrors"]
    assert f"{old}/manifest.json" in report["deleted"]
    left = bucket_keys(server, bucket)
    assert not any(k.startswith(f"{old}/") and k.endswith("manifest.json") for k in left), left


def test_a_run_whose_s3_server_dies_reports_its_own_error_not_the_unlock(
    own_s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    """prune on an S3 primary SIGKILLed mid-run exited with "cannot reach S3 for
    unlock .locks/…": the failed unlock, in the lease's ``finally``, replaced the
    error of what the run was doing (the deletion)."""
    server = own_s3_server
    bucket = bucket_factory(server)
    storage = _storage(server, bucket, retry=RetryPolicy(deadline=2.0))
    storage.write_bytes("postgresql/logical/app/x/dump.pgdump.zst", b"dump")
    lock = ".locks/postgresql.logical.app.lock"
    with (
        pytest.raises(StorageError) as info,
        storage.lease(lock, timeout=0, command="prune"),
    ):
        server.kill()
        storage.delete("postgresql/logical/app/x/dump.pgdump.zst")
    assert "deleting postgresql/logical/app/x/dump.pgdump.zst" in str(info.value)
    assert "unlock" not in str(info.value)
