"""The PITR plan without a cluster: which base backup, how far the WAL reaches,
what is refused up front, and the recovery configuration written from a plan.

The archive here is a listing built in memory (segment numbers, push times,
history entries), the base backups are manifests: exactly the inputs
``pitr_plan.choose_plan`` gets from ``pitr.plan_restore`` in production.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from seawall.catalog.models import Manifest, PostgresInfo
from seawall.errors import ConfigError, NotFoundError, RefusedError
from seawall.postgres.physical.pitr_plan import (
    RestorePlan,
    Target,
    choose_plan,
    make_target,
    parse_time,
    prefetch_names,
    wal_segment_size,
)
from seawall.postgres.physical.pitr_recovery import recovery_settings, wrapper_script
from seawall.postgres.wal.archive import ArchivedFile, ArchiveListing, HistoryEntry
from seawall.walcore.lsn import format_lsn
from seawall.walcore.names import segment_name

SIZE = 16 << 20
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def archive(
    segments: dict[int, list[int]], histories: dict[int, list[HistoryEntry]] | None = None
) -> ArchiveListing:
    """Segment ``n`` was pushed ``10 * n`` seconds after T0 (on any timeline)."""
    out = ArchiveListing(segment_size=SIZE, histories=histories or {})
    for tl, segnos in segments.items():
        for n in segnos:
            name = segment_name(tl, n, SIZE)
            mtime = at(10 * n).timestamp()
            out.files.append(ArchivedFile(name, f"wal/{name}", "segment", tl, n, 1, mtime))
    return out


def base(
    id_: str, segno: int, finished: float, *, timeline: int = 1, next_xid: int | None = None
) -> Manifest:
    """A base backup that started and stopped in segment ``segno``."""
    wal = segment_name(timeline, segno, SIZE)
    return Manifest(
        id=id_,
        engine="postgresql",
        kind="base",
        series="main",
        target="127.0.0.1:5432",
        status="success",
        started_at=at(finished - 1),
        finished_at=at(finished),
        postgres=PostgresInfo(
            timeline=timeline,
            start_lsn=format_lsn(segno * SIZE + 0x28),
            stop_lsn=format_lsn(segno * SIZE + 0x100),
            start_wal=wal,
            stop_wal=wal,
            wal_segment_size=SIZE,
            server_version_num=150000,
        ),
        labels={"next_xid": str(next_xid)} if next_xid is not None else {},
    )


# A stops in segment 2 (T0+25 s), B in segment 6 (T0+65 s); segments 1..10
# are archived, the last pushed at T0+100 s.
A = base("A", 2, 25, next_xid=100)
B = base("B", 6, 65, next_xid=200)
FULL = {1: list(range(1, 11))}


def plan(
    target: Target,
    bases: list[Manifest] | None = None,
    listing: ArchiveListing | None = None,
    **kw: object,
) -> RestorePlan:
    return choose_plan(
        target,
        [A, B] if bases is None else bases,
        archive(FULL) if listing is None else listing,
        cluster="main",
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )


def t_time(seconds: float) -> Target:
    return make_target(time_=at(seconds).isoformat())


def t_lsn(position: int) -> Target:
    return make_target(lsn=format_lsn(position))


# --- targets ----------------------------------------------------------------------


def test_parse_time_takes_zoneless_as_utc_and_converts_others() -> None:
    assert parse_time("2026-11-24T15:30:00Z") == datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    assert parse_time("2026-11-24 15:30:00") == datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    assert parse_time("2026-11-24T17:30:00+02:00") == datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    with pytest.raises(ConfigError, match="is not a time"):
        parse_time("yesterday")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"time_": "2026-11-24T15:30:00Z", "latest": True}, "exactly one"),
        ({"lsn": "0/1", "xid": "5"}, "exactly one"),
        ({"lsn": "nonsense"}, "is not an LSN"),
        ({"xid": "12a"}, "is not a transaction id"),
        ({"name": "x" * 64}, "1 to 63 characters"),
        ({"name": ""}, "1 to 63 characters"),
    ],
)
def test_make_target_refuses(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_target(**kwargs)  # type: ignore[arg-type]


def test_make_target_kinds() -> None:
    assert make_target(lsn="1/2A").lsn == (1 << 32) + 0x2A
    assert make_target(xid="42").xid == 42
    assert make_target(name="before-migration").describe() == "name before-migration"
    assert make_target(latest=True).describe() == "the end of the archived WAL"


# --- choosing the base backup -------------------------------------------------------


def test_time_target_takes_the_newest_base_backup_that_ended_before_it() -> None:
    assert plan(t_time(40)).base.id == "A"
    assert plan(t_time(65)).base.id == "B"  # a base backup is usable from its end on
    p = plan(t_time(90))
    assert p.base.id == "B"
    assert p.reach.last_segment == segment_name(1, 10, SIZE)
    assert p.reach.end_time == at(100)


def test_lsn_target_takes_the_newest_base_backup_consistent_before_it() -> None:
    assert plan(t_lsn(4 * SIZE)).base.id == "A"
    assert plan(t_lsn(6 * SIZE + 0x100)).base.id == "B"
    assert plan(t_lsn(11 * SIZE)).base.id == "B"  # the very end of segment 10


def test_latest_takes_the_newest_and_a_restore_point_the_oldest() -> None:
    assert plan(make_target(latest=True)).base.id == "B"
    assert plan(make_target(name="rp")).base.id == "A"


def test_xid_target_uses_the_recorded_next_xid() -> None:
    assert plan(make_target(xid="150")).base.id == "A"
    assert plan(make_target(xid="200")).base.id == "B"
    assert plan(make_target(xid="50")).base.id == "A"  # unknown position: the oldest


def test_explicit_base_backup_is_taken_and_an_unknown_one_refused() -> None:
    assert plan(t_time(90), base_id="A").base.id == "A"
    with pytest.raises(NotFoundError, match="base backup 'Z' not found"):
        plan(t_time(90), base_id="Z")


# --- refused up front, naming the window ------------------------------------------------

WINDOW = "recoverable window: 2026-11-24T12:00:25+00:00 .. 2026-11-24T12:01:40+00:00"


def test_time_before_every_base_backup_is_refused() -> None:
    with pytest.raises(RefusedError, match="before the oldest usable base backup") as exc:
        plan(t_time(10))
    assert WINDOW in str(exc.value)


def test_time_beyond_the_archived_wal_is_refused() -> None:
    with pytest.raises(RefusedError, match=r"after the newest WAL reachable") as exc:
        plan(t_time(101))
    assert "archived up to 2026-11-24T12:01:40+00:00" in str(exc.value)
    assert WINDOW in str(exc.value)


def test_time_before_the_chosen_base_backup_is_refused() -> None:
    with pytest.raises(RefusedError, match="is before base backup B ended"):
        plan(t_time(40), base_id="B")


def test_lsn_outside_the_reachable_wal_is_refused() -> None:
    with pytest.raises(RefusedError, match="before the oldest usable base backup"):
        plan(t_lsn(2 * SIZE))  # A becomes consistent at 2 * SIZE + 0x100
    with pytest.raises(RefusedError, match="before base backup B became consistent"):
        plan(t_lsn(4 * SIZE), base_id="B")
    with pytest.raises(RefusedError, match=r"after the newest WAL reachable .* up to 0/B000000"):
        plan(t_lsn(11 * SIZE + 1))


def test_a_gap_refuses_latest_and_a_time_beyond_it() -> None:
    gappy = archive({1: [n for n in range(1, 11) if n != 8]})
    with pytest.raises(RefusedError, match="--latest would silently stop at the gap") as exc:
        plan(make_target(latest=True), listing=gappy)
    assert segment_name(1, 8, SIZE) in str(exc.value)
    with pytest.raises(RefusedError, match="the archive has a gap at " + segment_name(1, 8, SIZE)):
        plan(t_time(75), listing=gappy)
    # before the gap the target is reachable
    assert plan(t_time(70), listing=gappy).reach.last_segment == segment_name(1, 7, SIZE)


def test_a_base_backup_without_its_wal_is_passed_over() -> None:
    c = base("C", 12, 125)  # its segments were never archived
    assert plan(make_target(latest=True), bases=[A, B, c]).base.id == "B"
    with pytest.raises(RefusedError, match="base backup C cannot become consistent"):
        plan(make_target(latest=True), bases=[A, B, c], base_id="C")


def test_no_usable_base_backup_says_nothing_is_recoverable() -> None:
    with pytest.raises(RefusedError, match="no base backup of 'main' has its WAL") as exc:
        plan(make_target(latest=True), listing=archive({1: [1]}))
    assert "nothing is recoverable" in str(exc.value)


# --- timelines ------------------------------------------------------------------------

# timeline 2 branched from 1 inside segment 5; timeline 1 went on to segment 10
BRANCHED = archive(
    {1: list(range(1, 11)), 2: [5, 6, 7, 8]}, {2: [HistoryEntry(1, 5 * SIZE + 0x1000)]}
)


def test_base_backup_taken_on_the_old_timeline_after_the_switch_is_not_on_the_path() -> None:
    p = plan(make_target(latest=True), listing=BRANCHED)
    assert p.base.id == "A"  # B (timeline 1, segment 6) is history that timeline 2 left
    assert p.reach.timeline == 2
    assert p.reach.last_segment == segment_name(2, 8, SIZE)
    assert plan(make_target(latest=True), listing=BRANCHED, timeline=1).base.id == "B"


def test_backup_end_is_its_stop_time_not_the_manifest_finish() -> None:
    # pg_basebackup (so the manifest) finished long after pg_backup_stop while
    # archiving lagged: a target in between is restorable from that backup
    lst = archive(FULL)
    late = base("L", 2, 15)  # manifest finished at +15 s, starts in segment 2
    with pytest.raises(RefusedError, match="before the oldest usable base backup"):
        plan(t_time(12), bases=[late], listing=lst)
    lst.backup_stops[f"{segment_name(1, 2, SIZE)}.00000028.backup"] = at(11)
    p = plan(t_time(12), bases=[late], listing=lst)
    assert p.base.id == "L"
    assert p.report.earliest == at(11)


def test_later_timeline_without_its_history_file_is_refused() -> None:
    # PostgreSQL finds timeline 2 only through 00000002.history: without it,
    # 'latest' stays on timeline 1 and a restore silently ends on the old branch
    no_hist = archive({1: list(range(1, 11)), 2: [5, 6, 7, 8]})
    with pytest.raises(RefusedError, match=r"00000002\.history is not archived") as exc:
        plan(make_target(latest=True), listing=no_hist)
    assert "--timeline 1" in str(exc.value) and "recoverable window" in str(exc.value)
    with pytest.raises(RefusedError, match=r"00000002\.history"):
        plan(make_target(latest=True), listing=no_hist, timeline=2)
    assert plan(make_target(latest=True), listing=no_hist, timeline=1).reach.timeline == 1
    # a history file that is archived but could not be read does not block
    unreadable = archive({1: list(range(1, 11)), 2: [5, 6, 7, 8]})
    unreadable.files.append(ArchivedFile("00000002.history", "h", "history", 2, None, 1, 0.0))
    assert plan(make_target(latest=True), listing=unreadable).reach.timeline == 2


def test_latest_needs_every_history_file_up_to_the_newest_timeline() -> None:
    # 00000003.history is there, 00000002.history is not: PostgreSQL's probe for the
    # newest timeline stops at 2, so 'latest' would stay on timeline 1
    lst = archive({1: list(range(1, 11)), 3: [5, 6]}, {3: [HistoryEntry(1, 5 * SIZE + 0x1000)]})
    with pytest.raises(RefusedError, match=r"00000002\.history"):
        plan(make_target(latest=True), listing=lst)
    # an explicit timeline only needs its own history file
    assert plan(make_target(latest=True), listing=lst, timeline=3).reach.timeline == 3


def test_prefetch_names_follow_the_timeline_switch() -> None:
    p = plan(make_target(latest=True), listing=BRANCHED)
    assert prefetch_names(p, None) == [segment_name(1, n, SIZE) for n in (2, 3, 4)] + [
        segment_name(2, n, SIZE) for n in (5, 6, 7, 8)
    ]
    p1 = plan(make_target(latest=True), listing=BRANCHED, timeline=1)
    assert prefetch_names(p1, 1) == [segment_name(1, n, SIZE) for n in range(6, 11)]


def test_wal_segment_size_comes_from_the_manifests() -> None:
    assert wal_segment_size([A]) == SIZE
    other = A.model_copy(deep=True)
    assert other.postgres is not None
    other.postgres.wal_segment_size = 64 << 20
    assert wal_segment_size([other, A]) == 64 << 20
    assert wal_segment_size([]) == 16 << 20


@given(
    ends=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=6, unique=True),
    target=st.floats(min_value=0, max_value=100),
)
def test_chosen_base_is_the_newest_that_ended_before_a_time_target(
    ends: list[int], target: float
) -> None:
    """Over any set of base backups (one per segment, ending 5 s after its start),
    a reachable time target gets the newest one that ended before it; an earlier
    target is refused."""
    bases = [base(f"b{n}", n, 10 * n + 5) for n in sorted(ends)]
    ended = [b for b in bases if b.time <= at(target)]
    if not ended:
        with pytest.raises(RefusedError):
            plan(t_time(target), bases=bases)
        return
    p = plan(t_time(target), bases=bases)
    assert p.base.id == ended[-1].id
    assert p.reach.end_time is not None and at(target) <= p.reach.end_time


# --- the recovery configuration written from a plan --------------------------------------


def settings_for(target: Target, **kw: object) -> dict[str, str]:
    args: dict[str, object] = {
        "restore_command": '/x/restore_command.sh "%f" "%p"',
        "port": 5433,
        "socket_dir": Path("/run/it's"),
        "action": "pause",
        "timeline": None,
        "listen_addresses": "127.0.0.1",
        "server_version_num": 150000,
    }
    args.update(kw)
    return recovery_settings(plan(target), **args)  # type: ignore[arg-type]


def test_recovery_settings_keep_the_restored_server_away_from_production() -> None:
    conf = settings_for(t_time(40.5))
    assert conf["recovery_target_time"] == "'2026-11-24 12:00:40.500000+00'"
    assert conf["recovery_target_action"] == "'pause'"
    assert conf["recovery_target_timeline"] == "'latest'"
    assert conf["unix_socket_directories"] == "'/run/it''s'"  # quoted for the conf file
    assert conf["restore_command"] == '\'/x/restore_command.sh "%f" "%p"\''
    assert (conf["archive_mode"], conf["archive_command"], conf["archive_library"]) == (
        "off",
        "''",
        "''",
    )
    assert conf["primary_conninfo"] == "''" and conf["port"] == "5433"


def test_recovery_settings_per_target_kind() -> None:
    latest = settings_for(make_target(latest=True), timeline=2, server_version_num=140000)
    assert "recovery_target_action" not in latest  # the end of WAL: promote
    assert latest["recovery_target_timeline"] == "'2'"
    assert "archive_library" not in latest  # PostgreSQL 14 does not know it
    assert settings_for(t_lsn(4 * SIZE))["recovery_target_lsn"] == "'0/4000000'"
    assert settings_for(make_target(xid="150"))["recovery_target_xid"] == "'150'"
    assert settings_for(make_target(name="rp"))["recovery_target_name"] == "'rp'"


# --- the restore_command wrapper ---------------------------------------------------------


def run_wrapper(tmp_path: Path, fetch_rc: int, *, spooled: bool = False) -> tuple[int, str]:
    """Run the rendered script with a stand-in wal-fetch that exits ``fetch_rc``."""
    fake = tmp_path / "fake seawall"
    fake.write_text(
        f'#!/bin/sh\necho "$HOME|$ENCRYPTION_IDENTITY_FILE|$SEAWALL_WAL_READ_AHEAD|$ENCRYPTION_KEY|$*" > "$HOME/args"\nexit {fetch_rc}\n'
    )
    fake.chmod(0o755)
    spool = tmp_path / "prefetch"
    if spooled:
        spool.mkdir()
        (spool / "000000010000000000000003").write_text("spooled")
    script = tmp_path / "restore_command.sh"
    env = {"HOME": str(tmp_path), "ENCRYPTION_IDENTITY_FILE": str(tmp_path / "it's key")}
    script.write_text(wrapper_script(env, spool=spool, read_ahead=4, executable=str(fake)))
    script.chmod(0o700)
    res = subprocess.run(
        [str(script), "000000010000000000000003", str(tmp_path / "dest")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ENCRYPTION_KEY": "leak"},
    )
    return res.returncode, res.stderr


@pytest.mark.parametrize(("fetch_rc", "expected"), [(0, 0), (1, 1), (2, 126), (8, 126)])
def test_wrapper_turns_any_fetch_failure_but_not_archived_into_fatal(
    tmp_path: Path, fetch_rc: int, expected: int
) -> None:
    rc, err = run_wrapper(tmp_path, fetch_rc)
    assert rc == expected
    assert ("stopping recovery" in err) == (expected == 126)
    # wal-fetch got exactly the given environment (quoted), nothing of the caller's
    args = (tmp_path / "args").read_text()
    assert args == (
        f"{tmp_path}|{tmp_path}/it's key|4||"
        f"postgres wal-fetch 000000010000000000000003 {tmp_path}/dest\n"
    )


def test_wrapper_takes_a_prefetched_segment_without_asking_wal_fetch(tmp_path: Path) -> None:
    rc, _ = run_wrapper(tmp_path, 3, spooled=True)
    assert rc == 0
    assert (tmp_path / "dest").read_text() == "spooled"
    assert not (tmp_path / "args").exists()
    assert (tmp_path / "prefetch" / ".requested").read_text() == "000000010000000000000003\n"
