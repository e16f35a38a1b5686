"""Point-in-time recovery, the plan: which base backup, how far the WAL reaches.

Pure: the inputs are the target, the cluster's base backup manifests and the
archive listing (with its history files already read); the output is a
:class:`RestorePlan` or a refusal that names the recoverable window. No
storage, no subprocess, no clock (``now`` is a parameter), so every rule
below is unit-tested without a cluster (tests/unit/test_pitr_plan.py);
:mod:`seawall.postgres.physical.pitr` reads the inputs and executes the plan.

The rules, and why:

- the base backup is the newest one that ends before the target (time, LSN,
  xid), the newest for ``--latest``, the oldest for a named restore point
  (its position is unknown without decoding WAL); ``--base-backup`` picks
  another;
- only a base backup whose WAL up to its stop segment is archived can become
  consistent, and only one on the path of the target timeline (an ancestor
  timeline counts only before the switch point) can reach it;
- the archived segments are followed from the base backup's start segment
  along the timeline history, and a target the WAL cannot reach is refused
  up front (before anything is unpacked), naming the recoverable window;
  ``--latest`` is refused at a gap, which would silently end recovery early;
- a later timeline whose ``.history`` file is not archived is refused: PostgreSQL
  finds timelines through those files, so recovery would silently stay on the
  branch the promotion abandoned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from seawall.catalog.models import Manifest
from seawall.errors import ConfigError, NotFoundError, RefusedError
from seawall.postgres.wal.archive import (
    ArchiveListing,
    BaseRef,
    Reach,
    WindowReport,
    analyse,
    base_end_time,
    describe_window,
    missing_histories,
    reach,
    timeline_path,
)
from seawall.walcore.lsn import format_lsn, parse_lsn
from seawall.walcore.names import parse_wal_name

TargetKind = Literal["time", "lsn", "xid", "name", "latest"]


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    value: str = ""
    time: datetime | None = None
    lsn: int | None = None
    xid: int | None = None

    def describe(self) -> str:
        if self.kind == "latest":
            return "the end of the archived WAL"
        if self.kind == "time" and self.time is not None:
            return f"time {self.time.isoformat()}"
        return f"{self.kind} {self.value}"


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC (said in --help)."""
    raw = text.strip().replace(" ", "T", 1) if "T" not in text else text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"--target-time {text!r} is not a time; use ISO 8601 like 2026-11-24T15:30:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def make_target(
    *,
    time_: str | None = None,
    lsn: str | None = None,
    xid: str | None = None,
    name: str | None = None,
    latest: bool = False,
) -> Target:
    given = [x for x in (time_, lsn, xid, name) if x is not None] + (["latest"] if latest else [])
    if len(given) != 1:
        raise ConfigError(
            "give exactly one of --target-time, --target-lsn, --target-xid, --target-name, --latest"
        )
    if time_ is not None:
        return Target("time", time_, time=parse_time(time_))
    if lsn is not None:
        try:
            return Target("lsn", lsn, lsn=parse_lsn(lsn))
        except ValueError:
            raise ConfigError(f"--target-lsn {lsn!r} is not an LSN (like 0/3000060)") from None
    if xid is not None:
        if not xid.isdigit():
            raise ConfigError(f"--target-xid {xid!r} is not a transaction id (a number)")
        return Target("xid", xid, xid=int(xid))
    if name is not None:
        if not name or len(name) >= 64:
            raise ConfigError("--target-name must be 1 to 63 characters")
        return Target("name", name)
    return Target("latest")


@dataclass
class RestorePlan:
    base: Manifest
    target: Target
    reach: Reach
    window: str
    report: WindowReport
    listing: ArchiveListing


def base_ref(m: Manifest, listing: ArchiveListing | None = None) -> BaseRef | None:
    pg = m.postgres
    if pg is None or not (pg.start_wal and pg.stop_wal and pg.stop_lsn and pg.timeline):
        return None
    return BaseRef(
        m.id,
        pg.timeline,
        pg.start_wal,
        pg.stop_wal,
        parse_lsn(pg.stop_lsn),
        base_end_time(m, listing),
    )


def wal_segment_size(bases: Sequence[Manifest]) -> int:
    """The WAL segment size the base backups recorded (16 MiB if none did)."""
    return next(
        (m.postgres.wal_segment_size for m in bases if m.postgres and m.postgres.wal_segment_size),
        16 << 20,
    )


def choose_plan(
    target: Target,
    bases: Sequence[Manifest],
    listing: ArchiveListing,
    *,
    cluster: str,
    now: datetime,
    base_id: str | None = None,
    timeline: int | None = None,
) -> RestorePlan:
    """Pick the base backup and check the archive can reach the target.

    ``bases``: the cluster's successful base backups, oldest first (one
    without a WAL range is ignored); ``listing``: the archive with its
    history files loaded; ``now`` only ages the newest segment in the report.
    """
    bases = [m for m in bases if base_ref(m) is not None]
    refs = [r for r in (base_ref(m, listing) for m in bases) if r is not None]
    report = analyse(listing, cluster, refs, now)
    window = describe_window(report)
    usable = [m for m in bases if _consistent(listing, m) and _on_path(listing, m, timeline)]
    if base_id is not None:
        chosen = next((m for m in bases if m.id == base_id), None)
        if chosen is None:
            raise NotFoundError(
                f"base backup {base_id!r} not found; `seawall postgres list` shows ids"
            )
    else:
        if not usable:
            raise RefusedError(
                f"no base backup of {cluster!r} has its WAL in the archive; {window}"
            )
        chosen = _choose(usable, target, window, listing)
    ref = base_ref(chosen)
    assert ref is not None
    _require_histories(listing, ref, timeline, window)
    r = reach(listing, ref.start_wal, timeline)
    if not _consistent(listing, chosen):
        raise RefusedError(
            f"base backup {chosen.id} cannot become consistent: WAL {r.missing or ref.stop_wal} "
            f"is missing from the archive; {window}"
        )
    gap = f" (the archive has a gap at {r.missing})" if r.missing else ""
    end_time = r.end_time.isoformat(timespec="seconds") if r.end_time else "?"
    if target.kind == "time":
        assert target.time is not None
        if target.time < base_end_time(chosen, listing):
            raise RefusedError(
                f"target {target.time.isoformat()} is before base backup {chosen.id} "
                f"ended ({base_end_time(chosen, listing).isoformat(timespec='seconds')}); {window}"
            )
        if r.end_time is None or target.time > r.end_time:
            raise RefusedError(
                f"target {target.time.isoformat()} is after the newest WAL reachable from base "
                f"backup {chosen.id} (archived up to {end_time}){gap}; {window}"
            )
    elif target.kind == "lsn":
        assert target.lsn is not None
        if target.lsn < ref.stop_lsn:
            raise RefusedError(
                f"target LSN {target.value} is before base backup {chosen.id} became consistent "
                f"({format_lsn(ref.stop_lsn)}); {window}"
            )
        if r.end_lsn is None or target.lsn > r.end_lsn:
            raise RefusedError(
                f"target LSN {target.value} is after the newest WAL reachable from base backup "
                f"{chosen.id} (up to {format_lsn(r.end_lsn or 0)}){gap}; {window}"
            )
    elif target.kind == "latest" and r.missing:
        raise RefusedError(
            f"--latest would silently stop at the gap before {r.missing}, archived up to "
            f"{end_time}; give an explicit --target-time/--target-lsn before the gap, or restore "
            f"the missing WAL; {window}"
        )
    return RestorePlan(chosen, target, r, window, report, listing)


def _require_histories(
    listing: ArchiveListing, ref: BaseRef, timeline: int | None, window: str
) -> None:
    """Refuse a target timeline PostgreSQL could not reach for want of a history file.

    ``latest`` probes the history files one by one above the base backup's
    timeline and stops at the first missing one: the restore would succeed on
    the abandoned branch. An explicit timeline needs its own history file.
    """
    top = timeline if timeline is not None else max(listing.timelines(), default=ref.timeline)
    if top <= ref.timeline:
        return
    missing = missing_histories(listing, ref.timeline, top)
    if timeline is not None:
        missing = [n for n in missing if n == f"{top:08X}.history"]
    if missing:
        raise RefusedError(
            f"timeline {top} has WAL in the archive but {', '.join(missing)} is not archived: "
            f"PostgreSQL cannot follow the timeline switch and would recover the older "
            f"timeline instead; push it from the promoted server's pg_wal (`seawall postgres "
            f"wal-push pg_wal/{missing[0]}` as PostgreSQL's user), or give --timeline "
            f"{ref.timeline} to restore that timeline; {window}"
        )


def _on_path(listing: ArchiveListing, m: Manifest, timeline: int | None) -> bool:
    """Can recovery towards the target timeline start from this base backup?

    A base backup on an ancestor timeline qualifies only if it became
    consistent before that timeline was left (the switch point recorded in
    the target timeline's history file); one taken later on the old timeline
    belongs to another branch of history.
    """
    ref = base_ref(m)
    if ref is None:
        return False
    tls = listing.timelines()
    target_tl = timeline if timeline is not None else max(tls, default=ref.timeline)
    if ref.timeline == target_tl:
        return True
    if ref.timeline > target_tl:
        return False
    history = listing.histories.get(target_tl)
    if not history:
        return True  # unknown history: assume a straight line
    ends = {e.parent: e.switch_lsn for e in history}
    return ref.timeline in ends and ref.stop_lsn <= ends[ref.timeline]


def _consistent(listing: ArchiveListing, m: Manifest) -> bool:
    ref = base_ref(m)
    if ref is None:
        return False
    r = reach(listing, ref.start_wal)
    stop = parse_wal_name(ref.stop_wal, listing.segment_size).segno
    return r.end_lsn is not None and stop is not None and r.end_lsn > stop * listing.segment_size


def _choose(
    bases: list[Manifest], target: Target, window: str, listing: ArchiveListing
) -> Manifest:
    """The newest base backup that ends before the target (bases oldest first)."""
    if target.kind == "latest":
        return bases[-1]
    if target.kind == "name":
        return bases[0]
    if target.kind == "time":
        assert target.time is not None
        before = [m for m in bases if base_end_time(m, listing) <= target.time]
        if not before:
            raise RefusedError(
                f"target {target.time.isoformat()} is before the oldest usable base backup "
                f"({bases[0].id}, ended {base_end_time(bases[0], listing).isoformat(timespec='seconds')}); "
                f"{window}"
            )
        return before[-1]
    if target.kind == "lsn":
        assert target.lsn is not None
        before = []
        for m in bases:
            ref = base_ref(m)
            if ref is not None and ref.stop_lsn <= target.lsn:
                before.append(m)
        if not before:
            raise RefusedError(
                f"target LSN {target.value} is before the oldest usable base backup "
                f"({bases[0].id}); {window}"
            )
        return before[-1]
    assert target.xid is not None
    before = [
        m
        for m in bases
        if (m.labels.get("next_xid") or "").isdigit() and int(m.labels["next_xid"]) <= target.xid
    ]
    return before[-1] if before else bases[0]


def prefetch_names(plan: RestorePlan, timeline: int | None) -> list[str]:
    """The archived segments recovery will most likely ask for, in order.

    From the base backup's start segment to the end of the reachable WAL;
    per segment number the newest timeline on the path that has it (that is
    the one PostgreSQL tries first). A wrong guess only costs a decode.
    """
    listing = plan.listing
    start = base_ref(plan.base)
    last = plan.reach.last_segment
    if start is None or last is None:
        return []
    first = parse_wal_name(start.start_wal, listing.segment_size)
    end = parse_wal_name(last, listing.segment_size).segno
    if first.segno is None or end is None:
        return []
    segs = listing.segments()
    path = timeline_path(listing, first.timeline, timeline)
    names = []
    for segno in range(first.segno, end + 1):
        tls = [t for t in path if segno in segs.get(t, {})]
        if not tls:
            break
        names.append(segs[max(tls)][segno].name)
    return names
