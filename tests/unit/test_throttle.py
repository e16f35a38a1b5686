"""The MAX_RATE token bucket with an injected clock (the real-time behaviour is
tests/integration/storage/test_throttle_rate.py), and the size parser."""

from __future__ import annotations

import threading

import pytest

from seawall.storage.local import LocalStorage
from seawall.storage.throttle import ThrottledStorage, TokenBucket, throttle
from seawall.units import parse_size


class FakeClock:
    """A clock that only moves when someone sleeps (or time is skipped)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _bucket(rate: float, clock: FakeClock, **kw: float) -> TokenBucket:
    return TokenBucket(rate, clock=clock, sleep=clock.sleep, **kw)


def test_starts_empty_so_the_average_counts_from_the_first_byte() -> None:
    clock = FakeClock()
    bucket = _bucket(100, clock)
    start = clock.now
    for _ in range(10):
        bucket.consume(100)
    assert clock.now - start == pytest.approx(10.0)
    assert clock.slept == [pytest.approx(1.0)] * 10


def test_the_time_before_the_first_write_is_not_credited() -> None:
    """A repository is opened long before a dump's first byte (pg_dump starting):
    that wait must not become a free burst at the start."""
    clock = FakeClock()
    bucket = _bucket(100, clock)
    clock.now += 30
    assert bucket.consume(100) == pytest.approx(1.0)


def test_a_write_bigger_than_the_burst_is_paid_as_debt() -> None:
    clock = FakeClock()
    bucket = _bucket(1000, clock)  # burst 500
    assert bucket.consume(5000) == pytest.approx(5.0)
    assert bucket.consume(1) == pytest.approx(0.001)


def test_time_spent_elsewhere_is_credited_not_slept_again() -> None:
    """A producer slower than the rate is never slowed further."""
    clock = FakeClock()
    bucket = _bucket(100, clock)
    bucket.consume(100)  # 1 s
    clock.now += 2.0  # the dump took 2 s to produce the next 100 bytes
    assert bucket.consume(50) == 0.0  # 50 tokens banked of the 50 allowed (burst)
    assert bucket.consume(50) == pytest.approx(0.5)


def test_an_idle_pause_buys_at_most_the_burst() -> None:
    clock = FakeClock()
    bucket = _bucket(100, clock, burst=30)
    bucket.consume(100)
    clock.now += 3600  # e.g. pg_dump waiting on a lock mid-dump
    assert bucket.consume(30) == 0.0
    assert bucket.consume(100) == pytest.approx(1.0)


def test_oversleeping_is_paid_back_by_the_refill() -> None:
    """On a loaded machine sleep() returns late: the next write waits less, so
    the average holds instead of drifting below the rate."""
    clock = FakeClock()

    def late_sleep(seconds: float) -> None:
        clock.now += seconds + 0.2

    bucket = TokenBucket(100, clock=clock, sleep=late_sleep)
    start = clock.now
    for _ in range(20):
        bucket.consume(100)
    assert 2000 / (clock.now - start) == pytest.approx(100, rel=0.05)


def test_threads_share_one_rate() -> None:
    clock = FakeClock()
    lock = threading.Lock()
    bucket = TokenBucket(100, clock=clock, sleep=lambda s: None)
    waits: list[float] = []

    def worker() -> None:
        for _ in range(5):
            w = bucket.consume(100)
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # no time passes: 20 reservations of 1 s each queue up behind each other
    assert max(waits) == pytest.approx(20.0)
    assert sorted(waits) == pytest.approx([float(i) for i in range(1, 21)])


def test_rate_zero_or_negative_is_refused() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(0)


def test_throttle_zero_returns_the_storage_itself(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path)
    assert throttle(storage, 0) is storage
    wrapped = throttle(storage, 1024)
    assert isinstance(wrapped, ThrottledStorage)
    assert wrapped.path("x") == storage.path("x")  # the backend's own capabilities pass through


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50MiB", 50 * 1024**2),
        ("50M", 50 * 1024**2),
        ("50 MiB/s", 50 * 1024**2),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("800KB", 800_000),
        ("2mb", 2_000_000),
        ("1000", 1000),
        ("0", 0),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["fast", "-5MiB", "5 parsecs", "", "MiB", "nan", "inf", -1])
def test_parse_size_refuses(text: str | int) -> None:
    with pytest.raises(ValueError):
        parse_size(text)
