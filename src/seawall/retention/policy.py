"""GFS retention for backup series: a pure decision, no I/O, no clock.

Why pure: retention is where backup tools lose data.  Keeping the decision a
function of ``(entries, policy, now)`` alone makes it testable by properties
(idempotence, order independence, the safety nets) and lets ``prune
--dry-run`` print exactly what ``prune`` would do.

Semantics follow restic's ``forget``: for every kind (last, daily, weekly,
monthly, yearly) the newest successful backup in each of the N most recent
buckets *that have one* is kept.  Buckets are calendar days, ISO weeks,
months and years in ``policy.tz``.  Failed backups never fill a bucket.
A pinned backup (restic's ``--keep-tag``, pgBackRest's annotations) is kept
with the reason ``pinned`` until its pin ends, whatever the counts say; it
still fills its buckets like any other successful backup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Kind = Literal["last", "daily", "weekly", "monthly", "yearly"]
KINDS: Final[tuple[Kind, ...]] = ("last", "daily", "weekly", "monthly", "yearly")

REASON_NEWEST = "newest successful"
REASON_NEWEST_VERIFIED = "newest successful and verified"
REASON_LOCKED = "locked by a running job"
REASON_PARTIAL = "stale partial"
REASON_NOT_SELECTED = "not selected by policy"
REASON_PITR = "needed for PITR window"
REASON_PINNED = "pinned"


class EmptyPolicyError(ValueError):
    """A policy whose counts are all zero would delete every backup.

    Refused outright rather than "kept safe by the newest-successful net":
    an empty policy is nearly always a configuration mistake (a typo in a
    variable name leaves every count at 0), and the operator must hear it.
    """


class InvalidPolicyError(ValueError):
    """A policy value that cannot mean anything (negative count, unknown tz)."""


class InvalidEntryError(ValueError):
    """An entry the decision cannot be made for (naive time, duplicate id)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One backup of a series as retention sees it.

    ``time`` must be timezone-aware (UTC in the catalog); naive times are
    refused because bucketing them in ``policy.tz`` would be a guess.
    """

    id: str
    series: str
    time: datetime
    ok: bool
    verified: bool | None = None
    locked: bool = False
    partial: bool = False
    #: an operator's pin (``seawall pin``): kept while ``now < pinned_until``
    #: (forever when None); an expired pin keeps nothing
    pinned: bool = False
    pinned_until: datetime | None = None

    def pin_active(self, now: datetime) -> bool:
        return self.pinned and (self.pinned_until is None or now < self.pinned_until)


def _format_timedelta(delta: timedelta) -> str:
    """Short human form used in reasons: ``7d``, ``36h``, ``90m``, ``45s``."""
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class Policy:
    """Counts per kind; ``yearly=-1`` keeps one backup per year forever.

    The constructor validates, so an invalid or empty policy cannot exist
    and every later use can trust it.
    """

    last: int = 0
    daily: int = 7
    weekly: int = 4
    monthly: int = 12
    yearly: int = 0
    tz: str = "UTC"
    failed_grace: timedelta = timedelta(days=7)
    require_verified: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise InvalidPolicyError / EmptyPolicyError; called by __init__."""
        for kind in KINDS:
            value = getattr(self, kind)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidPolicyError(f"retention {kind} must be an integer, got {value!r}")
            minimum = -1 if kind == "yearly" else 0
            if value < minimum:
                allowed = ">= 0 or -1 (forever)" if kind == "yearly" else ">= 0"
                raise InvalidPolicyError(f"retention {kind} must be {allowed}, got {value}")
        if all(getattr(self, kind) == 0 for kind in KINDS):
            raise EmptyPolicyError(
                "empty retention policy: last, daily, weekly, monthly and yearly are all 0, "
                "which would delete every backup; set at least one count"
            )
        if not isinstance(self.failed_grace, timedelta) or self.failed_grace < timedelta(0):
            raise InvalidPolicyError(
                f"retention failed_grace must be a non-negative timedelta, got {self.failed_grace!r}"
            )
        try:
            _zone(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidPolicyError(f"unknown retention time zone {self.tz!r}") from exc

    def count(self, kind: Kind) -> int:
        value: int = getattr(self, kind)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "daily": self.daily,
            "weekly": self.weekly,
            "monthly": self.monthly,
            "yearly": self.yearly,
            "tz": self.tz,
            "failed_grace_seconds": int(self.failed_grace.total_seconds()),
            "require_verified": self.require_verified,
        }


PolicySource = Policy | Mapping[str, Policy] | Callable[[str], Policy]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Keep or drop one entry, with every reason (never empty)."""

    entry: Entry
    keep: bool
    reasons: tuple[str, ...]
    tiers: tuple[Kind, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.entry.series,
            "id": self.entry.id,
            "time": self.entry.time.isoformat(),
            "action": "keep" if self.keep else "drop",
            "reasons": list(self.reasons),
            "tiers": list(self.tiers),
        }


@dataclass(frozen=True)
class Decision:
    """All verdicts, ordered by series, then newest first (time, id).

    The ordering is deterministic and independent of the input order, so
    two runs over the same catalog print and serialise identically.
    """

    now: datetime
    verdicts: tuple[Verdict, ...]
    policies: tuple[tuple[str, Policy], ...]
    _index: dict[tuple[str, str], Verdict] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index = {(v.entry.series, v.entry.id): v for v in self.verdicts}
        object.__setattr__(self, "_index", index)

    def get(self, series: str, entry_id: str) -> Verdict:
        return self._index[(series, entry_id)]

    def kept(self) -> tuple[Entry, ...]:
        return tuple(v.entry for v in self.verdicts if v.keep)

    def dropped(self) -> tuple[Entry, ...]:
        return tuple(v.entry for v in self.verdicts if not v.keep)

    def amended(self, keep: Mapping[tuple[str, str], str]) -> Decision:
        """Return a copy where the given entries are kept with an extra reason.

        Used by the WAL plug-in to force-keep the PITR anchor; it can only
        add keeps, never drops, so it cannot weaken a safety net.
        """
        verdicts = []
        for v in self.verdicts:
            extra = keep.get((v.entry.series, v.entry.id))
            if extra is None or extra in v.reasons:
                verdicts.append(v)
                continue
            reasons = v.reasons if v.keep else ()
            verdicts.append(Verdict(v.entry, True, (*reasons, extra), v.tiers))
        return Decision(self.now, tuple(verdicts), self.policies)

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "policies": {series: p.to_dict() for series, p in self.policies},
            "entries": [v.to_dict() for v in self.verdicts],
            "kept": sum(1 for v in self.verdicts if v.keep),
            "dropped": sum(1 for v in self.verdicts if not v.keep),
        }


def _resolve(policy: PolicySource, series: str) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Mapping):
        try:
            found = policy[series]
        except KeyError:
            raise InvalidPolicyError(f"no retention policy for series {series!r}") from None
    else:
        found = policy(series)
    if not isinstance(found, Policy):
        raise InvalidPolicyError(f"retention policy for series {series!r} is not a Policy")
    found.validate()
    return found


def _bucket(kind: Kind, local: datetime, position: int) -> str:
    if kind == "last":
        return str(position)
    if kind == "daily":
        return local.date().isoformat()
    if kind == "weekly":
        iso = local.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if kind == "monthly":
        return f"{local.year:04d}-{local.month:02d}"
    return f"{local.year:04d}"


def _newest_first_key(entry: Entry) -> tuple[datetime, str]:
    return (entry.time, entry.id)


def counts_as_successful(entry: Entry, policy: Policy) -> bool:
    """Whether the entry may fill a bucket.

    Partials never count (no complete manifest).  With ``require_verified``
    a backup whose verification *failed* is not a good backup either; one
    never verified (None) still counts.
    """
    if entry.partial or not entry.ok:
        return False
    return not (policy.require_verified and entry.verified is False)


def _decide_series(entries: list[Entry], policy: Policy, now: datetime) -> list[Verdict]:
    zone = _zone(policy.tz)
    ordered = sorted(entries, key=_newest_first_key, reverse=True)
    successful = [e for e in ordered if counts_as_successful(e, policy)]

    reasons: dict[str, list[str]] = {e.id: [] for e in ordered}
    tiers: dict[str, list[Kind]] = {e.id: [] for e in ordered}
    remaining = {kind: policy.count(kind) for kind in KINDS}
    seen: dict[Kind, set[str]] = {kind: set() for kind in KINDS}

    # Walk newest first; the first entry seen for a bucket key is the newest
    # in that bucket.  A "seen" set (not "differs from previous") keeps this
    # right even if a DST jump made local dates non-monotonic.
    for position, entry in enumerate(successful, start=1):
        local = entry.time.astimezone(zone)
        for kind in KINDS:
            if remaining[kind] == 0:
                continue
            key = _bucket(kind, local, position)
            if key in seen[kind]:
                continue
            seen[kind].add(key)
            if remaining[kind] > 0:
                remaining[kind] -= 1
            reasons[entry.id].append(f"{kind} {key}")
            tiers[entry.id].append(kind)

    if successful:
        newest_reason = REASON_NEWEST
        newest = successful[0]
        if policy.require_verified:
            verified = [e for e in successful if e.verified is True]
            if verified:
                newest = verified[0]
                newest_reason = REASON_NEWEST_VERIFIED
        reasons[newest.id].append(newest_reason)

    grace = _format_timedelta(policy.failed_grace)
    verdicts: list[Verdict] = []
    for entry in ordered:
        why = reasons[entry.id]
        if entry.locked:
            why.append(REASON_LOCKED)
        if entry.pin_active(now):
            until = entry.pinned_until
            why.append(REASON_PINNED + (f" until {until.isoformat()}" if until else ""))
        keep = bool(why)
        if entry.partial:
            if not keep:
                why.append(REASON_PARTIAL)
        elif not counts_as_successful(entry, policy):
            what = "failed" if not entry.ok else "failed verification"
            if now - entry.time <= policy.failed_grace:
                why.append(f"{what}, within {grace} grace")
                keep = True
            elif not keep:
                why.append(f"{what}, past {grace} grace")
        elif not keep:
            why.append(REASON_NOT_SELECTED)
        if not keep and entry.pinned and entry.pinned_until is not None:
            why.append(f"pin expired {entry.pinned_until.isoformat()}")
        verdicts.append(Verdict(entry, keep, tuple(why), tuple(tiers[entry.id])))
    return verdicts


def apply_policy(entries: Iterable[Entry], policy: PolicySource, now: datetime) -> Decision:
    """Decide keep/drop for every entry; each series is decided on its own.

    ``policy`` is one Policy for all series, a mapping ``series -> Policy``
    or a callable returning the series' Policy (per-engine/per-series
    overrides are resolved by the caller).  O(n log n): one sort per series.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidEntryError("now must be timezone-aware")
    by_series: dict[str, list[Entry]] = {}
    seen_ids: set[tuple[str, str]] = set()
    for entry in entries:
        if entry.time.tzinfo is None or entry.time.utcoffset() is None:
            raise InvalidEntryError(f"backup {entry.id!r}: time must be timezone-aware")
        until = entry.pinned_until
        if until is not None and (until.tzinfo is None or until.utcoffset() is None):
            raise InvalidEntryError(f"backup {entry.id!r}: pin end must be timezone-aware")
        key = (entry.series, entry.id)
        if key in seen_ids:
            raise InvalidEntryError(f"duplicate backup id {entry.id!r} in series {entry.series!r}")
        seen_ids.add(key)
        by_series.setdefault(entry.series, []).append(entry)

    verdicts: list[Verdict] = []
    policies: list[tuple[str, Policy]] = []
    for series in sorted(by_series):
        resolved = _resolve(policy, series)
        policies.append((series, resolved))
        verdicts.extend(_decide_series(by_series[series], resolved, now))
    return Decision(now, tuple(verdicts), tuple(policies))
