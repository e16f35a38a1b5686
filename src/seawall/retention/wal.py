"""WAL retention plugged into the base-backup decision (pure).

Rules (docs/retention.md explains them):

* The PITR anchor is the newest complete base backup that ended at or
  before ``now - pitr_window`` (or, if the history is shorter than the
  window, the oldest complete one).  Restoring to any point of the window
  starts from it, so it is kept even if GFS would drop it, and every WAL
  file from its start segment onward is kept (on every timeline: a later
  timeline switch or an abandoned branch may still be a restore target).
* Any other kept complete base backup keeps its start..stop segments on its
  own timeline: the WAL it needs to become consistent.
* A kept base backup without a complete manifest (a running one, held by a
  lock) keeps everything from its start onward.
* ``.history`` files are always kept; unknown names are never dropped.
* If there is no usable base backup (complete, and not failed verification),
  nothing is dropped: WAL without a base backup is useless, but deleting it
  is irreversible and the operator may still repair a backup.
* A backup whose verification failed (``verified is False``) never anchors
  the window; the anchor moves to an older one, which only keeps more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from seawall.retention.policy import REASON_PITR, Decision, InvalidEntryError, Verdict
from seawall.walcore.names import DEFAULT_WAL_SEGMENT_SIZE, WalFile, parse_wal_name

REASON_HISTORY = "timeline history file, always kept"
REASON_UNKNOWN = "not a WAL file name, never dropped"
REASON_NO_BASE = "no usable base backup, nothing is dropped"


@dataclass(frozen=True, slots=True)
class BaseBackup:
    """What WAL retention needs from a base backup's manifest.

    ``time`` is the backup's end (the earliest point it can be restored to);
    ``stop_wal`` is None only while the backup is still running.
    """

    id: str
    timeline: int
    start_wal: str
    stop_wal: str | None
    time: datetime


@dataclass(frozen=True, slots=True)
class WalVerdict:
    name: str
    keep: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": "keep" if self.keep else "drop",
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class WalDecision:
    """The amended base-backup decision plus a verdict per WAL file."""

    bases: Decision
    segments: tuple[WalVerdict, ...]
    anchor: str | None
    pitr_window: timedelta
    now: datetime

    def kept_segments(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.segments if v.keep)

    def dropped_segments(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.segments if not v.keep)

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "pitr_window_seconds": int(self.pitr_window.total_seconds()),
            "anchor": self.anchor,
            "bases": self.bases.to_dict(),
            "wal": [v.to_dict() for v in self.segments],
            "wal_kept": sum(1 for v in self.segments if v.keep),
            "wal_dropped": sum(1 for v in self.segments if not v.keep),
        }


@dataclass(frozen=True, slots=True)
class _Need:
    """A WAL range some kept base backup needs; ``stop`` None = open-ended."""

    timelines: frozenset[int] | None  # None: any timeline
    start: int
    stop: int | None
    reason: str

    def covers(self, wal: WalFile) -> bool:
        assert wal.segno is not None
        if self.timelines is not None and wal.timeline not in self.timelines:
            return False
        return wal.segno >= self.start and (self.stop is None or wal.segno <= self.stop)


def _verdicts_by_id(decision: Decision) -> dict[str, Verdict]:
    found: dict[str, Verdict] = {}
    for verdict in decision.verdicts:
        if verdict.entry.id in found:
            raise InvalidEntryError(
                f"base backup id {verdict.entry.id!r} appears in several series; "
                "decide WAL per cluster"
            )
        found[verdict.entry.id] = verdict
    return found


def _complete(verdict: Verdict) -> bool:
    return verdict.entry.ok and not verdict.entry.partial


def _can_anchor(verdict: Verdict) -> bool:
    """A backup whose verification failed is never trusted as the anchor.

    Skipping it moves the anchor to an older backup, which only keeps more.
    """
    return _complete(verdict) and verdict.entry.verified is not False


def _segno(name: str, size: int, base_id: str) -> int:
    parsed = parse_wal_name(name, size)
    if parsed.segno is None or parsed.kind != "segment":
        raise InvalidEntryError(f"base backup {base_id!r}: {name!r} is not a segment name")
    return parsed.segno


def apply_wal_policy(
    bases: Iterable[BaseBackup],
    segments: Iterable[str],
    base_decision: Decision,
    pitr_window: timedelta,
    now: datetime,
    wal_segment_size: int = DEFAULT_WAL_SEGMENT_SIZE,
) -> WalDecision:
    """Decide which WAL files to keep; may force-keep the PITR anchor.

    ``base_decision`` is ``apply_policy`` over the same base backups (one
    cluster = one series).  Every base backup the decision keeps and that
    is complete or locked must be described in ``bases``: keeping a backup
    while its WAL range is unknown could silently make it unrestorable.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidEntryError("now must be timezone-aware")
    if pitr_window < timedelta(0):
        raise InvalidEntryError("pitr_window must not be negative")
    verdicts = _verdicts_by_id(base_decision)
    info: dict[str, BaseBackup] = {}
    for base in bases:
        if base.id not in verdicts:
            raise InvalidEntryError(f"base backup {base.id!r} is not in the base decision")
        if base.time.tzinfo is None or base.time.utcoffset() is None:
            raise InvalidEntryError(f"base backup {base.id!r}: time must be timezone-aware")
        info[base.id] = base

    complete = sorted(
        (info[i] for i, v in verdicts.items() if i in info and _can_anchor(v)),
        key=lambda b: (b.time, b.id),
    )
    cutoff = now - pitr_window
    anchor: BaseBackup | None = None
    for base in complete:
        if base.time <= cutoff:
            anchor = base
    if anchor is None and complete:
        anchor = complete[0]

    decision = base_decision
    if anchor is not None:
        series = verdicts[anchor.id].entry.series
        decision = base_decision.amended({(series, anchor.id): REASON_PITR})
    kept = {v.entry.id: v for v in decision.verdicts if v.keep}

    needs: list[_Need] = []
    if anchor is not None:
        needs.append(
            _Need(
                None,
                _segno(anchor.start_wal, wal_segment_size, anchor.id),
                None,
                f"needed for PITR window (from base backup {anchor.id})",
            )
        )
    for base_id in sorted(kept):
        verdict = kept[base_id]
        if not (_complete(verdict) or verdict.entry.locked):
            continue  # a failed backup kept for its grace period needs no WAL
        described = info.get(base_id)
        if described is None:
            raise InvalidEntryError(f"kept base backup {base_id!r}: WAL range unknown")
        start = _segno(described.start_wal, wal_segment_size, base_id)
        if _complete(verdict) and described.stop_wal is not None:
            stop = _segno(described.stop_wal, wal_segment_size, base_id)
            if stop < start:
                raise InvalidEntryError(f"base backup {base_id!r}: stop WAL before start WAL")
            reason = f"needed by base backup {base_id} for consistency"
            # the backup's timeline, and the names' own (they should agree)
            timelines = frozenset(
                {
                    described.timeline,
                    parse_wal_name(described.start_wal, wal_segment_size).timeline,
                    parse_wal_name(described.stop_wal, wal_segment_size).timeline,
                }
            )
            needs.append(_Need(timelines, start, stop, reason))
        else:
            reason = f"needed by running base backup {base_id}"
            needs.append(_Need(None, start, None, reason))

    oldest_start = min((n.start for n in needs), default=None)
    result: list[WalVerdict] = []
    for name in sorted(set(segments)):
        try:
            wal = parse_wal_name(name, wal_segment_size)
        except ValueError:
            result.append(WalVerdict(name, True, (REASON_UNKNOWN,)))
            continue
        if wal.kind == "history":
            result.append(WalVerdict(name, True, (REASON_HISTORY,)))
            continue
        if anchor is None:
            result.append(WalVerdict(name, True, (REASON_NO_BASE,)))
            continue
        reasons = tuple(n.reason for n in needs if n.covers(wal))
        if reasons:
            result.append(WalVerdict(name, True, reasons))
        elif oldest_start is not None and wal.segno is not None and wal.segno < oldest_start:
            result.append(WalVerdict(name, False, ("older than every kept base backup",)))
        else:
            result.append(
                WalVerdict(
                    name, False, ("before the PITR window and outside every kept base backup",)
                )
            )
    return WalDecision(decision, tuple(result), anchor.id if anchor else None, pitr_window, now)
