"""Property tests of apply_policy over random backup histories.

Histories have irregular times (several per minute, per day, gaps of weeks),
identical timestamps, failures, stale partials, locks, several series, and
start next to DST changes (Europe/Berlin, America/New_York, the half-hour
shift of Australia/Lord_Howe) and a new year, bucketed in random zones.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from seawall.retention import (
    KINDS,
    EmptyPolicyError,
    Entry,
    Policy,
    apply_policy,
    counts_as_successful,
)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
]

# Instants (UTC) shortly before a DST change or a new year.
EDGES = [
    datetime(2026, 3, 28, 20, 0, tzinfo=UTC),  # Berlin springs forward 03-29 01:00Z
    datetime(2026, 10, 24, 20, 0, tzinfo=UTC),  # Berlin falls back 10-25 01:00Z
    datetime(2026, 3, 7, 20, 0, tzinfo=UTC),  # New York springs forward 03-08 07:00Z
    datetime(2026, 10, 31, 20, 0, tzinfo=UTC),  # New York falls back 11-01 06:00Z
    datetime(2026, 4, 4, 10, 0, tzinfo=UTC),  # Lord Howe falls back 30 min 04-04 15:00Z
    datetime(2026, 10, 3, 10, 0, tzinfo=UTC),  # Lord Howe springs forward 30 min
    datetime(2025, 12, 31, 18, 0, tzinfo=UTC),  # new year (ISO week 2026-W01 starts 12-29)
]

GAP = st.one_of(
    st.integers(0, 120),  # same minute(s), including identical times
    st.integers(0, 6 * 3600),  # several per day
    st.integers(20 * 3600, 28 * 3600),  # about daily
    st.integers(7 * 86400, 45 * 86400),  # gaps of weeks
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Entry], datetime]:
    n = draw(st.integers(0, 50))
    time = draw(st.sampled_from(EDGES)) - timedelta(seconds=draw(st.integers(0, 3 * 86400)))
    entries = []
    for i in range(n):
        time += timedelta(seconds=draw(GAP))
        state = draw(st.sampled_from(["ok", "ok", "ok", "ok", "failed", "partial"]))
        pinned = state == "ok" and draw(st.integers(0, 7)) == 0
        until = (
            time + timedelta(seconds=draw(st.integers(0, 20 * 86400)))
            if pinned and draw(st.booleans())
            else None
        )
        entries.append(
            Entry(
                id=f"e{i:03d}",
                series=draw(st.sampled_from(["a", "b"])),
                time=time,
                ok=state == "ok" or (state == "partial" and draw(st.booleans())),
                verified=draw(st.sampled_from([None, True, False])),
                locked=draw(st.integers(0, 9)) == 0,
                partial=state == "partial",
                pinned=pinned,
                pinned_until=until,
            )
        )
    now = time + timedelta(seconds=draw(st.integers(0, 40 * 86400)))
    return entries, now


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    counts = {
        "last": draw(st.integers(0, 4)),
        "daily": draw(st.integers(0, 8)),
        "weekly": draw(st.integers(0, 5)),
        "monthly": draw(st.integers(0, 13)),
        "yearly": draw(st.sampled_from([-1, 0, 0, 1, 2])),
    }
    if all(v == 0 for v in counts.values()):
        counts[draw(st.sampled_from(list(KINDS)))] = 1
    return Policy(
        **counts,
        tz=draw(st.sampled_from(ZONES)),
        failed_grace=draw(st.sampled_from([timedelta(0), timedelta(hours=1), timedelta(days=7)])),
        require_verified=draw(st.booleans()),
    )


PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _newest(entries: list[Entry], pred: Callable[[Entry], bool]) -> Entry | None:
    candidates = [e for e in entries if pred(e)]
    return max(candidates, key=lambda e: (e.time, e.id)) if candidates else None


def _series(entries: list[Entry]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for e in entries:
        out.setdefault(e.series, []).append(e)
    return out


@PROPS
@given(histories(), policies())
def test_newest_successful_always_kept(
    history: tuple[list[Entry], datetime], policy: Policy
) -> None:
    entries, now = history
    decision = apply_policy(entries, policy, now)
    for group in _series(entries).values():
        newest = _newest(group, lambda e: counts_as_successful(e, policy))
        if newest is not None:
            assert decision.get(newest.series, newest.id).keep
        if policy.require_verified:
            verified = _newest(
                group, lambda e: counts_as_successful(e, policy) and e.verified is True
            )
            if verified is not None:
                assert decision.get(verified.series, verified.id).keep


@PROPS
@given(histories(), policies())
def test_locked_never_dropped_and_every_verdict_explained(
    history: tuple[list[Entry], datetime], policy: Policy
) -> None:
    entries, now = history
    decision = apply_policy(entries, policy, now)
    assert len(decision.verdicts) == len(entries)
    for v in decision.verdicts:
        assert v.reasons, v
        if v.entry.locked:
            assert v.keep and "locked by a running job" in v.reasons
        if v.entry.partial and not v.entry.locked:
            assert not v.keep and v.reasons == ("stale partial",)


@PROPS
@given(histories(), policies())
def test_active_pin_always_kept_expired_pin_keeps_nothing(
    history: tuple[list[Entry], datetime], policy: Policy
) -> None:
    entries, now = history
    decision = apply_policy(entries, policy, now)
    unpinned = [
        Entry(e.id, e.series, e.time, e.ok, e.verified, e.locked, e.partial) for e in entries
    ]
    plain = apply_policy(unpinned, policy, now)
    for v in decision.verdicts:
        if v.entry.pin_active(now):
            assert v.keep and any(r.startswith("pinned") for r in v.reasons), v
        else:
            # a pin that ended changes nothing: the same decision as without it
            assert v.keep == plain.get(v.entry.series, v.entry.id).keep, v


@PROPS
@given(histories(), policies())
def test_kept_count_bounded_by_policy_plus_safety_nets(
    history: tuple[list[Entry], datetime], policy: Policy
) -> None:
    entries, now = history
    decision = apply_policy(entries, policy, now)
    for series, group in _series(entries).items():
        years = {e.time.astimezone(ZoneInfo(policy.tz)).year for e in group}
        yearly = len(years) if policy.yearly == -1 else policy.yearly
        budget = policy.last + policy.daily + policy.weekly + policy.monthly + yearly
        safety = sum(1 for e in group if e.locked or e.pin_active(now))
        safety += sum(
            1
            for e in group
            if not e.partial
            and not counts_as_successful(e, policy)
            and now - e.time <= policy.failed_grace
        )
        safety += 2 if policy.require_verified else 1  # newest successful (and verified)
        kept = [v for v in decision.verdicts if v.entry.series == series and v.keep]
        assert len(kept) <= budget + safety
        for kind in KINDS:
            tiered = sum(1 for v in kept if kind in v.tiers)
            limit = len(years) if kind == "yearly" and policy.yearly == -1 else policy.count(kind)
            assert tiered <= limit


@PROPS
@given(histories(), policies())
def test_idempotent(history: tuple[list[Entry], datetime], policy: Policy) -> None:
    entries, now = history
    first = apply_policy(entries, policy, now)
    second = apply_policy(first.kept(), policy, now)
    assert all(v.keep for v in second.verdicts)
    for v in second.verdicts:
        assert v.reasons == first.get(v.entry.series, v.entry.id).reasons


@PROPS
@given(histories(), policies(), st.randoms(use_true_random=False))
def test_independent_of_input_order(
    history: tuple[list[Entry], datetime], policy: Policy, rnd: random.Random
) -> None:
    entries, now = history
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    assert (
        apply_policy(shuffled, policy, now).to_dict()
        == apply_policy(entries, policy, now).to_dict()
    )


def _oracle_gfs(group: list[Entry], policy: Policy) -> set[str]:
    """A second, set-based formulation of restic's rule.

    For each kind: group the successful backups by calendar bucket, take
    each bucket's newest, and keep the N buckets whose newest is newest.
    """
    zone = ZoneInfo(policy.tz)
    good = [e for e in group if counts_as_successful(e, policy)]
    by_recency = sorted(good, key=lambda e: (e.time, e.id), reverse=True)

    def key_of(kind: str, e: Entry) -> object:
        d: date = e.time.astimezone(zone).date()
        return {
            "last": e.id,
            "daily": d,
            "weekly": tuple(d.isocalendar())[:2],
            "monthly": (d.year, d.month),
            "yearly": d.year,
        }[kind]

    keep: set[str] = set()
    for kind in KINDS:
        n = policy.count(kind)
        if n == 0:
            continue
        newest_per_bucket: dict[object, Entry] = {}
        for e in good:
            k = key_of(kind, e)
            if k not in newest_per_bucket or (e.time, e.id) > (
                newest_per_bucket[k].time,
                newest_per_bucket[k].id,
            ):
                newest_per_bucket[k] = e
        reps = sorted(newest_per_bucket.values(), key=lambda e: (e.time, e.id), reverse=True)
        keep |= {e.id for e in (reps if n < 0 else reps[:n])}
    assert all(e.id in keep for e in by_recency[:1])  # any non-empty policy keeps the newest
    return keep


@PROPS
@given(histories(), policies())
def test_matches_set_based_oracle(history: tuple[list[Entry], datetime], policy: Policy) -> None:
    entries, now = history
    decision = apply_policy(entries, policy, now)
    for series, group in _series(entries).items():
        expected = _oracle_gfs(group, policy)
        for e in group:
            if (
                e.locked
                or e.pin_active(now)
                or (
                    not e.partial
                    and not counts_as_successful(e, policy)
                    and now - e.time <= policy.failed_grace
                )
            ):
                expected.add(e.id)
        if policy.require_verified:
            verified = _newest(
                group, lambda e: counts_as_successful(e, policy) and e.verified is True
            )
            if verified is not None:
                expected.add(verified.id)
        got = {v.entry.id for v in decision.verdicts if v.entry.series == series and v.keep}
        assert got == expected


@given(
    st.sampled_from(ZONES),
    st.sampled_from([timedelta(0), timedelta(days=7)]),
    st.booleans(),
)
def test_empty_policy_refused(tz: str, grace: timedelta, require_verified: bool) -> None:
    with pytest.raises(EmptyPolicyError, match="empty retention policy"):
        Policy(
            last=0,
            daily=0,
            weekly=0,
            monthly=0,
            yearly=0,
            tz=tz,
            failed_grace=grace,
            require_verified=require_verified,
        )


def test_ten_thousand_entries_scale() -> None:
    """Not a timing test (bench/ times it): a sanity check that it is not quadratic."""
    import time as clock

    base = datetime(2000, 1, 1, tzinfo=UTC)
    entries = [
        Entry(f"b{i:05d}", f"s{i % 10}", base + timedelta(hours=7 * i), ok=i % 13 != 0)
        for i in range(10_000)
    ]
    now = base + timedelta(hours=7 * 10_000)
    started = clock.perf_counter()
    decision = apply_policy(entries, Policy(yearly=-1), now)
    elapsed = clock.perf_counter() - started
    assert len(decision.verdicts) == 10_000
    assert elapsed < 1.0, f"apply_policy over 10,000 entries took {elapsed:.3f}s"
