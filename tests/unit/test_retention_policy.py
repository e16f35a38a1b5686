"""Hand-written tests of apply_policy: golden histories and each rule.

The expected sets here are written out by hand (with the calendar reasoning
in comments), never computed by the algorithm under test.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from seawall.retention import (
    Decision,
    EmptyPolicyError,
    Entry,
    InvalidEntryError,
    InvalidPolicyError,
    Policy,
    apply_policy,
)

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def daily_history(series: str = "db") -> list[Entry]:
    """One successful backup per day at 02:00 UTC for 400 days.

    Days 2025-10-21 .. 2026-11-24 inclusive (2026-11-24 minus 399 days is
    2025-10-21); the id is ``b-<UTC date>``.
    """
    first = date(2025, 10, 21)
    entries = []
    for n in range(400):
        day = first + timedelta(days=n)
        when = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
        entries.append(Entry(id=f"b-{day.isoformat()}", series=series, time=when, ok=True))
    assert entries[-1].id == "b-2026-11-24"
    return entries


def kept_ids(decision: Decision) -> set[str]:
    return {e.id for e in decision.kept()}


# Default policy 7 daily / 4 weekly / 12 monthly, buckets in UTC.
# 2026-11-24 is a Tuesday in ISO week 2026-W48 (Mon 23 .. Sun 29 Nov).
GOLDEN_DEFAULT = {
    # daily: the 7 newest calendar days that have a backup
    "b-2026-11-24",  # Tue; also weekly 2026-W48, monthly 2026-11, newest successful
    "b-2026-11-23",  # Mon (W48)
    "b-2026-11-22",  # Sun; also weekly 2026-W47 (its newest day, Sunday)
    "b-2026-11-21",
    "b-2026-11-20",
    "b-2026-11-19",
    "b-2026-11-18",  # 7th day
    # weekly: 4 newest ISO weeks; W48 and W47 are already kept above
    "b-2026-11-15",  # Sun of 2026-W46 (Mon 9 .. Sun 15 Nov)
    "b-2026-11-08",  # Sun of 2026-W45 (Mon 2 .. Sun 8 Nov)
    # monthly: 12 newest months, the last day of each; 2026-11 is b-2026-11-24
    "b-2026-10-31",
    "b-2026-09-30",
    "b-2026-08-31",
    "b-2026-07-31",
    "b-2026-06-30",
    "b-2026-05-31",
    "b-2026-04-30",
    "b-2026-03-31",
    "b-2026-02-28",  # 2026 is not a leap year
    "b-2026-01-31",
    "b-2025-12-31",  # 12th month: Dec 2025; Nov and Oct 2025 fall out
}


def test_golden_400_days_default_policy() -> None:
    decision = apply_policy(daily_history(), Policy(), NOW)
    assert kept_ids(decision) == GOLDEN_DEFAULT
    assert len(decision.kept()) == 20
    assert len(decision.dropped()) == 380
    newest = decision.get("db", "b-2026-11-24")
    assert newest.reasons == (
        "daily 2026-11-24",
        "weekly 2026-W48",
        "monthly 2026-11",
        "newest successful",
    )
    assert decision.get("db", "b-2026-11-22").reasons == ("daily 2026-11-22", "weekly 2026-W47")
    assert decision.get("db", "b-2026-11-15").reasons == ("weekly 2026-W46",)
    assert decision.get("db", "b-2025-12-31").reasons == ("monthly 2025-12",)
    assert decision.get("db", "b-2026-11-17").reasons == ("not selected by policy",)
    assert decision.get("db", "b-2026-11-17").keep is False


# Same history, buckets in America/Los_Angeles (UTC-8 in winter, -7 in
# summer): 02:00 UTC is the previous local evening, so b-X belongs to the
# local day X-1 and the newest backup of a local month is b-<1st of next month>.
GOLDEN_LOS_ANGELES = {
    # daily: local days 11-23 .. 11-17
    "b-2026-11-24",  # local Mon 11-23: also weekly 2026-W48, monthly 2026-11
    "b-2026-11-23",  # local Sun 11-22: also weekly 2026-W47
    "b-2026-11-22",
    "b-2026-11-21",
    "b-2026-11-20",
    "b-2026-11-19",
    "b-2026-11-18",  # local 11-17, 7th day
    "b-2026-11-16",  # local Sun 11-15: weekly 2026-W46
    "b-2026-11-09",  # local Sun 11-08: weekly 2026-W45
    "b-2026-11-01",  # local 10-31: monthly 2026-10
    "b-2026-10-01",  # local 09-30: monthly 2026-09
    "b-2026-09-01",
    "b-2026-08-01",
    "b-2026-07-01",
    "b-2026-06-01",
    "b-2026-05-01",
    "b-2026-04-01",
    "b-2026-03-01",  # local 02-28
    "b-2026-02-01",  # local 01-31
    "b-2026-01-01",  # local 2025-12-31: monthly 2025-12, the 12th month
}


def test_golden_400_days_in_los_angeles() -> None:
    decision = apply_policy(daily_history(), Policy(tz="America/Los_Angeles"), NOW)
    assert kept_ids(decision) == GOLDEN_LOS_ANGELES
    assert decision.get("db", "b-2026-11-01").reasons == ("monthly 2026-10",)


def test_yearly_forever_keeps_one_per_year() -> None:
    # Monthly only 1, yearly forever: newest of 2026 and newest of 2025.
    decision = apply_policy(daily_history(), Policy(daily=0, weekly=0, monthly=1, yearly=-1), NOW)
    assert kept_ids(decision) == {"b-2026-11-24", "b-2025-12-31"}
    assert decision.get("db", "b-2025-12-31").reasons == ("yearly 2025",)


def test_keep_last() -> None:
    decision = apply_policy(daily_history(), Policy(last=3, daily=0, weekly=0, monthly=0), NOW)
    assert kept_ids(decision) == {"b-2026-11-24", "b-2026-11-23", "b-2026-11-22"}
    assert decision.get("db", "b-2026-11-22").reasons == ("last 3",)


def t(day: int, hour: int = 2, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_buckets_skip_days_without_backups_and_use_newest_of_day() -> None:
    entries = [
        Entry("a", "db", t(2, 1), ok=True),
        Entry("b", "db", t(2, 23), ok=True),  # newest of 11-02
        Entry("c", "db", t(10), ok=True),  # 8-day gap before it
        Entry("d", "db", t(20), ok=True),
    ]
    decision = apply_policy(entries, Policy(daily=3, weekly=0, monthly=0), NOW)
    assert kept_ids(decision) == {"b", "c", "d"}
    assert decision.get("db", "b").reasons == ("daily 2026-11-02",)


def test_failed_backups_never_fill_a_bucket_and_expire_after_grace() -> None:
    entries = [
        Entry("good-old", "db", t(1), ok=True),
        Entry("fail-old", "db", t(5), ok=False),  # 19 days old: past 7d grace
        Entry("good", "db", t(20), ok=True),
        Entry("fail-new", "db", t(23), ok=False),  # within grace
    ]
    decision = apply_policy(entries, Policy(daily=2, weekly=0, monthly=0), NOW)
    # daily 2 goes to the two *successful* days, not to the failed ones
    assert kept_ids(decision) == {"good-old", "good", "fail-new"}
    assert decision.get("db", "fail-new").reasons == ("failed, within 7d grace",)
    assert decision.get("db", "fail-old").reasons == ("failed, past 7d grace",)


def test_failed_grace_boundary_is_inclusive() -> None:
    entries = [
        Entry("good", "db", t(20), ok=True),
        Entry("exactly", "db", NOW - timedelta(days=7), ok=False),
        Entry("just-past", "db", NOW - timedelta(days=7, seconds=1), ok=False),
    ]
    decision = apply_policy(entries, Policy(), NOW)
    assert decision.get("db", "exactly").reasons == ("failed, within 7d grace",)
    assert decision.get("db", "just-past").reasons == ("failed, past 7d grace",)
    hours = apply_policy(entries, Policy(failed_grace=timedelta(hours=36)), NOW)
    assert hours.get("db", "exactly").reasons == ("failed, past 36h grace",)


def test_stale_partial_dropped_locked_kept() -> None:
    entries = [
        Entry("p", "db", t(23), ok=False, partial=True),
        Entry("running", "db", t(24, 5), ok=False, partial=True, locked=True),
        Entry("restoring", "db", t(1), ok=True, locked=True),
        Entry("good", "db", t(22), ok=True),
    ]
    decision = apply_policy(entries, Policy(daily=1, weekly=0, monthly=0), NOW)
    assert decision.get("db", "p").keep is False
    assert decision.get("db", "p").reasons == ("stale partial",)
    assert decision.get("db", "running").reasons == ("locked by a running job",)
    assert decision.get("db", "restoring").reasons == ("locked by a running job",)
    assert decision.get("db", "good").reasons == ("daily 2026-11-22", "newest successful")


def test_require_verified_protects_newest_verified() -> None:
    entries = [
        Entry("v", "db", t(10), ok=True, verified=True),
        Entry("never", "db", t(20), ok=True, verified=None),
        Entry("bad", "db", t(23), ok=True, verified=False),
    ]
    decision = apply_policy(
        entries, Policy(last=1, daily=0, weekly=0, monthly=0, require_verified=True), NOW
    )
    # "bad" failed verification: it does not count, but is within grace
    assert decision.get("db", "bad").reasons == ("failed verification, within 7d grace",)
    assert decision.get("db", "never").reasons == ("last 1",)
    assert decision.get("db", "v").reasons == ("newest successful and verified",)
    plain = apply_policy(entries, Policy(last=1, daily=0, weekly=0, monthly=0), NOW)
    assert kept_ids(plain) == {"bad"}


def test_dst_fall_back_same_local_day() -> None:
    # 2026-11-01 05:30Z is 01:30 EDT and 06:30Z is 01:30 EST: same local day
    # in New York; 2026-11-02 04:30Z is 23:30 EST on 11-01 as well.
    entries = [
        Entry("edt", "db", datetime(2026, 11, 1, 5, 30, tzinfo=UTC), ok=True),
        Entry("est", "db", datetime(2026, 11, 1, 6, 30, tzinfo=UTC), ok=True),
        Entry("late", "db", datetime(2026, 11, 2, 4, 30, tzinfo=UTC), ok=True),
        Entry("prev", "db", datetime(2026, 10, 31, 12, 0, tzinfo=UTC), ok=True),
    ]
    ny = apply_policy(entries, Policy(daily=2, weekly=0, monthly=0, tz="America/New_York"), NOW)
    assert kept_ids(ny) == {"late", "prev"}
    assert ny.get("db", "late").reasons[0] == "daily 2026-11-01"
    utc = apply_policy(entries, Policy(daily=2, weekly=0, monthly=0), NOW)
    assert kept_ids(utc) == {"late", "est"}


def test_lord_howe_half_hour_fall_back() -> None:
    # Lord Howe leaves +11:00 for +10:30 at 2026-04-05 02:00 local (15:00Z).
    entries = [
        Entry("apr4", "db", datetime(2026, 4, 4, 12, 45, tzinfo=UTC), ok=True),  # 04-04 23:45
        Entry("early", "db", datetime(2026, 4, 4, 13, 15, tzinfo=UTC), ok=True),  # 04-05 00:15
        Entry("dst", "db", datetime(2026, 4, 4, 14, 45, tzinfo=UTC), ok=True),  # 01:45 +11:00
        Entry("std", "db", datetime(2026, 4, 4, 15, 15, tzinfo=UTC), ok=True),  # 01:45 +10:30
    ]
    policy = Policy(daily=2, weekly=0, monthly=0, tz="Australia/Lord_Howe")
    decision = apply_policy(entries, policy, NOW)
    assert kept_ids(decision) == {"std", "apr4"}
    assert decision.get("db", "std").reasons == ("daily 2026-04-05", "newest successful")
    assert decision.get("db", "apr4").reasons == ("daily 2026-04-04",)


def test_iso_week_across_new_year() -> None:
    # 2026-01-01 (Thu) is in ISO week 2026-W01, 2025-12-29 (Mon) too.
    entries = [
        Entry("mon", "db", datetime(2025, 12, 29, 2, tzinfo=UTC), ok=True),
        Entry("sun", "db", datetime(2025, 12, 28, 2, tzinfo=UTC), ok=True),
        Entry("thu", "db", datetime(2026, 1, 1, 2, tzinfo=UTC), ok=True),
    ]
    decision = apply_policy(entries, Policy(daily=0, weekly=2, monthly=0), NOW)
    assert kept_ids(decision) == {"thu", "sun"}
    assert decision.get("db", "sun").reasons == ("weekly 2025-W52",)


def test_series_are_independent_with_per_series_policy() -> None:
    entries = daily_history("a") + daily_history("b")
    policies = {"a": Policy(), "b": Policy(last=2, daily=0, weekly=0, monthly=0)}
    decision = apply_policy(entries, policies, NOW)
    assert {e.id for e in decision.kept() if e.series == "a"} == GOLDEN_DEFAULT
    assert {e.id for e in decision.kept() if e.series == "b"} == {"b-2026-11-24", "b-2026-11-23"}
    by_callable = apply_policy(entries, lambda s: policies[s], NOW)
    assert by_callable.to_dict() == decision.to_dict()
    with pytest.raises(InvalidPolicyError, match="no retention policy for series 'b'"):
        apply_policy(entries, {"a": Policy()}, NOW)


def test_empty_and_invalid_policies_refused() -> None:
    with pytest.raises(EmptyPolicyError, match="empty retention policy"):
        Policy(daily=0, weekly=0, monthly=0)
    with pytest.raises(InvalidPolicyError):
        Policy(daily=-1)
    with pytest.raises(InvalidPolicyError):
        Policy(yearly=-2)
    with pytest.raises(InvalidPolicyError, match="time zone"):
        Policy(tz="Mars/Olympus")
    with pytest.raises(InvalidPolicyError):
        Policy(failed_grace=timedelta(days=-1))
    assert issubclass(EmptyPolicyError, ValueError)
    Policy(daily=0, weekly=0, monthly=0, yearly=-1)  # yearly forever alone is a policy


def test_invalid_entries_refused() -> None:
    naive = Entry("x", "db", datetime(2026, 11, 1), ok=True)
    with pytest.raises(InvalidEntryError, match="timezone-aware"):
        apply_policy([naive], Policy(), NOW)
    dup = [Entry("x", "db", t(1), ok=True), Entry("x", "db", t(2), ok=True)]
    with pytest.raises(InvalidEntryError, match="duplicate"):
        apply_policy(dup, Policy(), NOW)
    with pytest.raises(InvalidEntryError):
        apply_policy([], Policy(), datetime(2026, 11, 1))


def test_to_dict_is_json_and_ordered() -> None:
    entries = [
        Entry("x", "z-series", t(3), ok=True),
        Entry("y", "a-series", t(1), ok=True),
        Entry("z", "a-series", t(2), ok=False),
    ]
    data = apply_policy(entries, Policy(), NOW).to_dict()
    json.dumps(data)
    assert [(e["series"], e["id"]) for e in data["entries"]] == [
        ("a-series", "z"),
        ("a-series", "y"),
        ("z-series", "x"),
    ]
    assert data["entries"][0] == {
        "series": "a-series",
        "id": "z",
        "time": "2026-11-02T02:00:00+00:00",
        "action": "drop",
        "reasons": ["failed, past 7d grace"],
        "tiers": [],
    }
    assert data["policies"]["a-series"]["daily"] == 7


def test_pinned_backup_survives_a_same_day_second_backup() -> None:
    """Issue 12: the pre-migration backup taken the same day replaces the
    nightly one in the daily bucket; the pinned nightly stays, saying why."""
    entries = [
        Entry("nightly", "db", t(23, 2), ok=True, pinned=True),
        Entry("pre-migration", "db", t(23, 15), ok=True),
        Entry("older", "db", t(22, 2), ok=True, pinned=True, pinned_until=t(22, 12)),
    ]
    decision = apply_policy(entries, Policy(daily=1, weekly=0, monthly=0), NOW)
    assert decision.get("db", "nightly").keep
    assert decision.get("db", "nightly").reasons == ("pinned",)
    assert decision.get("db", "pre-migration").reasons == ("daily 2026-11-23", "newest successful")
    # the pin of "older" ended at noon on the 22nd: retained like any other
    older = decision.get("db", "older")
    assert not older.keep
    assert older.reasons == ("not selected by policy", f"pin expired {t(22, 12).isoformat()}")
    # until in the future: kept, and the reason says until when
    later = apply_policy(
        [Entry("p", "db", t(1), ok=True, pinned=True, pinned_until=t(30)), *entries[:2]],
        Policy(daily=1, weekly=0, monthly=0),
        NOW,
    )
    assert later.get("db", "p").reasons == (f"pinned until {t(30).isoformat()}",)
    with pytest.raises(InvalidEntryError, match="pin end"):
        apply_policy(
            [Entry("n", "db", t(1), ok=True, pinned=True, pinned_until=datetime(2027, 1, 1))],
            Policy(),
            NOW,
        )
