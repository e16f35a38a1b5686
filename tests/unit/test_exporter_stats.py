"""Per-series aggregation (pure: records in, stats out)."""

from __future__ import annotations

from datetime import UTC, datetime

from seawall.exporter.catalog_cache import Record
from seawall.exporter.collector import series_stats
from seawall.retention import Policy

DAY = 86400.0
NOW = datetime(2026, 11, 24, tzinfo=UTC).timestamp()


def rec(i: int, status: str, t: float, verified: bool | None = None) -> Record:
    return Record(
        id=f"20261120T00000{i}Z-000{i}",
        engine="postgresql",
        kind="logical",
        series="app",
        status=status,
        time=t,
        finished=t,
        duration=10.0 + i,
        stored_size=100 * i,
        verified_at=t + 60 if verified is not None else None,
        verified_ok=verified,
    )


def test_newest_first_aggregates() -> None:
    records = [
        rec(4, "running", NOW - 10),
        rec(3, "failed", NOW - DAY),
        rec(2, "success", NOW - 2 * DAY, verified=False),
        rec(1, "success", NOW - 3 * DAY, verified=True),
    ]
    s = series_stats(records, Policy(daily=1, weekly=0, monthly=0), NOW)
    assert s.last_run is records[1]
    assert s.last_success is records[2]
    assert s.runs == {"success": 2, "failed": 1}
    assert s.successful == 2
    assert s.stored_bytes == 1000
    assert s.verification == (NOW - 2 * DAY + 60, False, 0)
    assert s.tiers == {"last": 0, "daily": 1, "weekly": 0, "monthly": 0, "yearly": 0}


def test_no_policy_no_tiers_and_empty_series() -> None:
    assert series_stats([rec(1, "success", NOW)], None, NOW).tiers is None
    empty = series_stats([], Policy(), NOW)
    assert empty.last_run is None and empty.last_success is None and empty.tiers is None
