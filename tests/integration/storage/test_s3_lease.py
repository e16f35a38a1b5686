"""Series locks on S3 (conditional create + lease) against SeaweedFS, for real:
two runs racing, a dead holder's lease taken over, renewal, loss detected."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from seawall.errors import LockedError
from seawall.storage.s3 import RetryPolicy, S3Storage
from seawall.storage.s3.lease import S3Lease
from tests.support.s3server import S3Server

KEY = ".locks/postgresql.logical.app.lock"


def _storage(server: S3Server, bucket: str) -> S3Storage:
    return S3Storage(
        f"s3://{bucket}/repo",
        endpoint_url=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        retry=RetryPolicy(deadline=20.0),
    )


def test_two_runs_racing_one_wins(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    storage = _storage(s3_server, bucket_factory(s3_server))
    leases = [S3Lease(storage, KEY, lease_seconds=60, command=f"run {i}") for i in range(4)]
    barrier = threading.Barrier(len(leases))
    outcome: dict[int, BaseException | None] = {}

    def take(i: int) -> None:
        barrier.wait()
        try:
            leases[i].acquire()
            outcome[i] = None
        except BaseException as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(leases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, exc in outcome.items() if exc is None]
    assert len(winners) == 1
    for exc in outcome.values():
        if exc is not None:
            assert isinstance(exc, LockedError) and exc.exit_code == 6
            assert f"run {winners[0]}" in str(exc) and "\n" not in str(exc)
    leases[winners[0]].release()
    assert not storage.exists(KEY)
    with S3Lease(storage, KEY, lease_seconds=60):
        assert storage.exists(KEY)


def test_dead_holders_lease_is_taken_over_and_the_holder_learns_it(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    storage = _storage(s3_server, bucket_factory(s3_server))
    dead = S3Lease(storage, KEY, lease_seconds=2)
    dead.acquire()
    dead._stop.set()  # the holder hangs: it stops renewing (a SIGSTOPped pod)
    with pytest.raises(LockedError):
        S3Lease(storage, KEY, lease_seconds=2).acquire()
    time.sleep(3.5)  # past the lease by the server's clock (1 s resolution)
    taker = S3Lease(storage, KEY, lease_seconds=60)
    taker.acquire()
    assert dead._put(IfMatch=dead.etag or "") is None  # the old holder's renewal is refused
    dead.release()  # wakes up and releases: the taker's lock must survive
    assert storage.exists(KEY)
    with pytest.raises(LockedError):
        S3Lease(storage, KEY, lease_seconds=60).acquire()
    taker.release()
    assert not storage.exists(KEY)


def test_renewal_keeps_a_live_holder(
    s3_server: S3Server, bucket_factory: Callable[[S3Server], str]
) -> None:
    storage = _storage(s3_server, bucket_factory(s3_server))
    with S3Lease(storage, KEY, lease_seconds=3) as holder:
        time.sleep(5)  # longer than one lease: renewed every second
        with pytest.raises(LockedError):
            S3Lease(storage, KEY, lease_seconds=3).acquire()
        assert not holder.lost.is_set()
