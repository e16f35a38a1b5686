"""seawall.catalog.locks on a repository without a local volume (ADR 0012).

The same functions the engines, prune and the drill call take the S3
backend's lease where a local volume would take flock: two processes
racing for a series lock, a hold that prune sees while a reader holds it
and no longer after, lock listing, and a read-only key that can still read
(its hold cannot be recorded: it says so and goes on).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable

import pytest

from seawall.app.drill import drill_lock
from seawall.catalog.locks import (
    backup_hold,
    is_backup_held,
    is_series_locked,
    list_locks,
    series_lock,
)
from seawall.errors import LockedError
from seawall.storage.base import Storage
from seawall.storage.factory import open_storage
from tests.integration.storage.test_s3_full_cycle import aws_env
from tests.support.s3server import S3Server


def _open(server: S3Server, bucket: str, read_only: bool = False) -> Storage:
    return open_storage(f"s3://{bucket}/repo", env=aws_env(server, read_only=read_only))


def _hold_lock(endpoint_env: dict[str, str], url: str, seconds: float) -> None:
    storage = open_storage(url, env=endpoint_env)
    with series_lock(storage, "postgresql", "logical", "app", timeout=5, command="holder"):
        time.sleep(seconds)


def test_series_lock_excludes_another_process(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    bucket = bucket_factory(s3_server)
    storage = _open(s3_server, bucket)
    assert storage.local_volume() is None
    url = f"s3://{bucket}/repo"
    proc = multiprocessing.get_context("spawn").Process(
        target=_hold_lock, args=(aws_env(s3_server), url, 6)
    )
    proc.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not is_series_locked(
            storage, "postgresql", "logical", "app"
        ):
            time.sleep(0.1)
        assert is_series_locked(storage, "postgresql", "logical", "app")
        [info] = [i for i in list_locks(storage) if i.held]
        assert (info.engine, info.series, info.command) == ("postgresql", "app", "holder")
        with (
            pytest.raises(LockedError, match="held by run") as exc,
            series_lock(storage, "postgresql", "logical", "app", timeout=0.5, command="second"),
        ):
            pass
        assert exc.value.exit_code == 6
        # another series is free meanwhile
        with series_lock(storage, "postgresql", "logical", "other", timeout=1, command="x"):
            pass
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    assert not is_series_locked(storage, "postgresql", "logical", "app")
    with (
        series_lock(storage, "postgresql", "logical", "app", timeout=1, command="third"),
        pytest.raises(LockedError),
        drill_lock(storage, 0, "d1"),
        drill_lock(storage, 0, "d2"),
    ):
        pass


def test_backup_hold_is_seen_by_prune_while_held(
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = bucket_factory(s3_server)
    storage = _open(s3_server, bucket)
    args = ("postgresql", "base", "main", "20261206T000000Z-0001")
    assert not is_backup_held(storage, *args)
    with backup_hold(storage, *args), backup_hold(storage, *args):  # readers share it
        assert is_backup_held(storage, *args)
        assert not is_backup_held(storage, "postgresql", "base", "main", "20261206T000000Z-0002")
    assert not is_backup_held(storage, *args)
    assert list(storage.list("")) == []

    read_only = _open(s3_server, bucket, read_only=True)
    with caplog.at_level(logging.WARNING), backup_hold(read_only, *args):
        assert not is_backup_held(storage, *args)
    assert "could not record a hold" in caplog.text
