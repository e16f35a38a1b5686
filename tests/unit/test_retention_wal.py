"""WAL retention plugged into the base-backup decision.

Hand-written cases first (expected names written out), then properties over
random base-backup histories with timeline switches and archive gaps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from seawall.retention import (
    BaseBackup,
    Entry,
    InvalidEntryError,
    Policy,
    apply_policy,
    apply_wal_policy,
)
from seawall.walcore.names import segment_name, segno_of

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def seg(n: int, tl: int = 1) -> str:
    return segment_name(tl, n)


def base(bid: str, when: datetime, start: int, stop: int | None, tl: int = 1) -> BaseBackup:
    return BaseBackup(bid, tl, seg(start, tl), seg(stop, tl) if stop is not None else None, when)


def entry(b: BaseBackup, *, ok: bool = True, locked: bool = False, partial: bool = False) -> Entry:
    return Entry(b.id, "cluster", b.time, ok=ok, locked=locked, partial=partial)


# Weekly base backups; segment numbers grow 10 per week.
B1 = base("B1", datetime(2026, 10, 27, 2, tzinfo=UTC), 10, 11)
B2 = base("B2", datetime(2026, 11, 3, 2, tzinfo=UTC), 20, 21)
B3 = base("B3", datetime(2026, 11, 10, 2, tzinfo=UTC), 30, 31)
B4 = base("B4", datetime(2026, 11, 17, 2, tzinfo=UTC), 40, 41)
B5 = base("B5", datetime(2026, 11, 24, 3, tzinfo=UTC), 50, 51)
BASES = [B1, B2, B3, B4, B5]


def test_anchor_forced_and_ranges_kept() -> None:
    # GFS (last 1 + monthly 2) keeps B5 (newest, month 2026-11) and B1 (only
    # backup of 2026-10).  The 7-day window starts 2026-11-17 06:00, so B4
    # (ended 11-17 02:00) is the anchor and is kept although GFS dropped it.
    policy = Policy(last=1, daily=0, weekly=0, monthly=2)
    gfs = apply_policy([entry(b) for b in BASES], policy, NOW)
    assert {e.id for e in gfs.kept()} == {"B1", "B5"}
    extra = [
        "00000002.history",
        "000000010000000000000014.00000028.backup",  # B2's backup file (start 0x14 = 20)
        "00000001000000000000000A.00000028.backup",  # B1's (start 0x0A = 10)
        "000000020000000000000035",  # timeline 2 after a switch, segno 53
        "README",
    ]
    segments = [seg(n) for n in range(56)] + extra
    wal = apply_wal_policy(BASES, segments, gfs, WEEK, NOW)

    assert wal.anchor == "B4"
    assert {e.id for e in wal.bases.kept()} == {"B1", "B4", "B5"}
    assert wal.bases.get("cluster", "B4").reasons == ("needed for PITR window",)
    kept = set(wal.kept_segments())
    expected = (
        {seg(n) for n in range(40, 56)}  # PITR window: from B4's start onward
        | {seg(10), seg(11)}  # B1 consistency
        | {
            "00000002.history",
            "00000001000000000000000A.00000028.backup",
            "000000020000000000000035",
            "README",
        }
    )
    assert kept == expected
    assert set(wal.dropped_segments()) == set(segments) - expected
    verdicts = {v.name: v for v in wal.segments}
    assert verdicts[seg(10)].reasons == ("needed by base backup B1 for consistency",)
    assert verdicts[seg(41)].reasons == (
        "needed for PITR window (from base backup B4)",
        "needed by base backup B4 for consistency",
    )
    assert verdicts[seg(5)].reasons == ("older than every kept base backup",)
    assert verdicts[seg(25)].reasons == (
        "before the PITR window and outside every kept base backup",
    )
    json.dumps(wal.to_dict())


def test_history_shorter_than_window_anchors_on_oldest() -> None:
    gfs = apply_policy([entry(b) for b in BASES], Policy(last=1, daily=0, weekly=0, monthly=0), NOW)
    wal = apply_wal_policy(BASES, [seg(n) for n in range(56)], gfs, timedelta(days=60), NOW)
    assert wal.anchor == "B1"
    assert set(wal.kept_segments()) == {seg(n) for n in range(10, 56)}


def test_failed_and_running_bases() -> None:
    running = base("R", datetime(2026, 11, 24, 5, tzinfo=UTC), 52, None)
    failed = base("F", datetime(2026, 11, 23, 5, tzinfo=UTC), 45, 46)
    entries = [
        entry(B3),
        entry(failed, ok=False),
        entry(running, ok=False, partial=True, locked=True),
    ]
    gfs = apply_policy(entries, Policy(), NOW)
    assert {e.id for e in gfs.kept()} == {"B3", "F", "R"}
    wal = apply_wal_policy([B3, failed, running], [seg(n) for n in range(60)], gfs, WEEK, NOW)
    assert wal.anchor == "B3"  # the failed backup can never anchor
    assert set(wal.kept_segments()) == {seg(n) for n in range(30, 60)}
    verdicts = {v.name: v for v in wal.segments}
    assert "needed by running base backup R" in verdicts[seg(55)].reasons


def test_nothing_dropped_without_a_complete_base() -> None:
    running = base("R", NOW - timedelta(hours=1), 52, None)
    gfs = apply_policy([entry(running, ok=False, partial=True, locked=True)], Policy(), NOW)
    wal = apply_wal_policy([running], [seg(n) for n in range(60)], gfs, WEEK, NOW)
    assert wal.anchor is None
    assert wal.dropped_segments() == ()


def test_failed_verification_never_anchors() -> None:
    entries = [entry(b) for b in BASES]
    entries[3] = Entry("B4", "cluster", B4.time, ok=True, verified=False)
    gfs = apply_policy(entries, Policy(last=1, daily=0, weekly=0, monthly=0), NOW)
    wal = apply_wal_policy(BASES, [seg(n) for n in range(56)], gfs, WEEK, NOW)
    assert wal.anchor == "B3"  # B4 is corrupt: the window is anchored one week earlier
    assert set(wal.kept_segments()) == {seg(n) for n in range(30, 56)}


def test_kept_base_without_wal_range_refused() -> None:
    gfs = apply_policy([entry(B1), entry(B2)], Policy(), NOW)
    with pytest.raises(InvalidEntryError, match="WAL range unknown"):
        apply_wal_policy([B1], [seg(1)], gfs, WEEK, NOW)
    with pytest.raises(InvalidEntryError, match="not in the base decision"):
        apply_wal_policy([B1, B2, B3], [seg(1)], gfs, WEEK, NOW)


# ---------------------------------------------------------------- properties


@st.composite
def archives(
    draw: st.DrawFn,
) -> tuple[list[BaseBackup], list[Entry], list[str], timedelta, datetime, Policy]:
    n = draw(st.integers(0, 12))
    switch_at = draw(st.integers(0, 300))  # timeline 2 starts at this segno
    time = datetime(2026, 1, 1, tzinfo=UTC)
    segno = 0
    bases: list[BaseBackup] = []
    entries: list[Entry] = []
    for i in range(n):
        time += timedelta(seconds=draw(st.integers(3600, 20 * 86400)))
        segno += draw(st.integers(1, 30))
        stop = segno + draw(st.integers(0, 3))
        tl = 2 if segno >= switch_at else 1
        if tl == 1 and stop >= switch_at:
            stop = segno  # a backup does not cross the switch
        running = draw(st.integers(0, 9)) == 0
        b = BaseBackup(
            f"b{i:02d}",
            tl,
            segment_name(tl, segno),
            None if running else segment_name(tl, stop),
            time,
        )
        bases.append(b)
        state = "running" if running else draw(st.sampled_from(["ok", "ok", "ok", "failed"]))
        entries.append(
            Entry(
                b.id,
                "cluster",
                time,
                ok=state == "ok",
                verified=draw(st.sampled_from([None, True, True, False])),
                locked=running or draw(st.integers(0, 19)) == 0,
                partial=running,
            )
        )
        segno = stop
    newest = segno + draw(st.integers(0, 20))
    names = {segment_name(1 if s < switch_at else 2, s) for s in range(newest + 1)}
    names |= {
        segment_name(1, s) for s in range(switch_at, min(newest, switch_at + 3))
    }  # old TL tail
    names |= {"00000002.history"}
    names |= {f"{b.start_wal}.00000028.backup" for b in bases}
    holes = draw(st.sets(st.integers(0, newest), max_size=5))
    names -= {segment_name(1 if s < switch_at else 2, s) for s in holes}
    window = timedelta(days=draw(st.integers(0, 40)))
    now = time + timedelta(seconds=draw(st.integers(0, 10 * 86400)))
    policy = Policy(
        last=draw(st.integers(0, 3)),
        daily=draw(st.integers(0, 3)),
        weekly=draw(st.integers(0, 3)),
        monthly=draw(st.integers(1, 3)),
    )
    return bases, entries, sorted(names), window, now, policy


WAL_PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Archive = tuple[list[BaseBackup], list[Entry], list[str], timedelta, datetime, Policy]


@WAL_PROPS
@given(archives())
def test_kept_bases_never_lose_their_range(archive: Archive) -> None:
    bases, entries, names, window, now, policy = archive
    gfs = apply_policy(entries, policy, now)
    wal = apply_wal_policy(bases, names, gfs, window, now)
    kept = set(wal.kept_segments())
    for v in gfs.verdicts:  # the plug-in only ever adds keeps
        assert not v.keep or wal.bases.get("cluster", v.entry.id).keep
    for b in bases:
        v = wal.bases.get("cluster", b.id)
        if not v.keep or b.stop_wal is None or not v.entry.ok:
            continue
        for s in range(segno_of(b.start_wal), segno_of(b.stop_wal) + 1):
            name = segment_name(b.timeline, s)
            if name in names:
                assert name in kept, (b, name)
    assert "00000002.history" in kept


@WAL_PROPS
@given(archives())
def test_every_point_of_the_window_reachable(archive: Archive) -> None:
    bases, entries, names, window, now, policy = archive
    gfs = apply_policy(entries, policy, now)
    wal = apply_wal_policy(bases, names, gfs, window, now)
    complete = sorted(
        (b for b, e in zip(bases, entries, strict=True) if e.ok and e.verified is not False),
        key=lambda b: b.time,
    )
    if not complete:
        assert wal.dropped_segments() == ()
        return
    before = [b for b in complete if b.time <= now - window]
    anchor = before[-1] if before else complete[0]
    assert wal.anchor == anchor.id
    assert wal.bases.get("cluster", anchor.id).keep
    kept = set(wal.kept_segments())
    start = segno_of(anchor.start_wal)
    for name in names:
        if name.endswith(".history") or segno_of(name) >= start:
            assert name in kept, name


@WAL_PROPS
@given(archives())
def test_wal_policy_idempotent(archive: Archive) -> None:
    bases, entries, names, window, now, policy = archive
    gfs = apply_policy(entries, policy, now)
    first = apply_wal_policy(bases, names, gfs, window, now)
    kept_ids = {e.id for e in first.bases.kept()}
    gfs2 = apply_policy([e for e in entries if e.id in kept_ids], policy, now)
    second = apply_wal_policy(
        [b for b in bases if b.id in kept_ids], first.kept_segments(), gfs2, window, now
    )
    assert second.anchor == first.anchor
    assert {e.id for e in second.bases.kept()} == kept_ids
    assert second.dropped_segments() == ()
    assert second.kept_segments() == first.kept_segments()


def test_pinned_base_backup_keeps_its_wal() -> None:
    """A pinned base backup (B2) that GFS would drop stays, with its own WAL
    (start..stop), so the pin keeps something restorable; its pin ending
    lets both go."""
    policy = Policy(last=1, daily=0, weekly=0, monthly=1)
    segments = [seg(n) for n in range(56)]
    pinned = [
        Entry(b.id, "cluster", b.time, ok=True, pinned=b.id == "B2", pinned_until=until)
        for b in BASES
        for until in [NOW + WEEK if b.id == "B2" else None]
    ]
    wal = apply_wal_policy(BASES, segments, apply_policy(pinned, policy, NOW), WEEK, NOW)
    assert wal.bases.get("cluster", "B2").keep
    assert wal.bases.get("cluster", "B2").reasons == (f"pinned until {(NOW + WEEK).isoformat()}",)
    kept = set(wal.kept_segments())
    assert {seg(20), seg(21)} <= kept and seg(19) not in kept and seg(22) not in kept
    later = NOW + WEEK + timedelta(seconds=1)
    expired = apply_wal_policy(BASES, segments, apply_policy(pinned, policy, later), WEEK, later)
    assert not expired.bases.get("cluster", "B2").keep
    assert seg(20) not in set(expired.kept_segments())
