"""Retention applied to the volume: plan with the pure policy, then delete.

``plan`` turns the catalog into :class:`~seawall.retention.Entry` objects
(one series per engine/kind/series), asks :func:`~seawall.retention.apply_policy`
what to keep and why, and, for PostgreSQL base backups, plugs the WAL archive
into the same decision with :func:`~seawall.retention.apply_wal_policy` (the
PITR anchor is force-kept, and no WAL a kept base backup needs is dropped).

``execute`` deletes in a crash-safe order: a backup's manifest first (from
then on it does not exist), then its artifacts, then the empty directory.
A kill -9 at any point leaves at worst a directory without a manifest, which
the next run removes as an orphan. Re-running is always safe.

Nothing here imports an engine; WAL names come from the catalog's layout.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from seawall.catalog.locks import is_backup_held, is_series_locked
from seawall.catalog.models import Manifest
from seawall.catalog.naming import decode_segment, is_backup_id
from seawall.catalog.rejected import list_rejected
from seawall.catalog.store import Inventory, backup_prefix, manifest_key
from seawall.catalog.wal_layout import wal_prefix
from seawall.context import Context
from seawall.errors import SeawallError
from seawall.log import get_logger
from seawall.retention import (
    BaseBackup,
    Decision,
    Entry,
    Policy,
    apply_policy,
    apply_wal_policy,
)
from seawall.storage.base import Storage
from seawall.walcore.archived import WalObject, parse_wal_key
from seawall.walcore.layout import WAL_ROOT

#: A temporary or manifest-less directory younger than this may belong to a
#: run in progress on another host; leave it alone.
STALE_AFTER = timedelta(hours=1)


def series_key(engine: str, kind: str, series: str) -> str:
    return f"{engine}/{kind}/{series}"


@dataclass
class Action:
    """One line of the prune report."""

    what: str  # backup | wal | partial | orphan | rejected
    action: str  # keep | drop
    series: str
    name: str
    reasons: list[str]
    size: int = 0
    tiers: list[str] = field(default_factory=list)
    key: str = ""
    pin: dict[str, Any] | None = None  # the backup's pin (note, until), if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "action": self.action,
            "series": self.series,
            "name": self.name,
            "reasons": self.reasons,
            "size": self.size,
            "tiers": self.tiers,
            "pin": self.pin,
        }


@dataclass
class PrunePlan:
    now: datetime
    actions: list[Action] = field(default_factory=list)
    manifests: dict[tuple[str, str], Manifest] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def drops(self) -> list[Action]:
        return [a for a in self.actions if a.action == "drop"]

    def to_dict(self) -> dict[str, Any]:
        drops = self.drops()
        return {
            "now": self.now.isoformat(),
            "actions": [a.to_dict() for a in self.actions],
            "dropped": len(drops),
            "kept": len(self.actions) - len(drops),
            "freed_bytes": sum(a.size for a in drops),
            "errors": self.errors,
        }


@dataclass
class PruneResult:
    plan: PrunePlan
    deleted: int = 0
    freed_bytes: int = 0
    skipped: list[str] = field(default_factory=list)


def _entry(m: Manifest, storage: Storage) -> Entry:
    verified = m.verification.ok if m.verification is not None else None
    held = is_backup_held(storage, m.engine, m.kind, m.series, m.id)
    return Entry(
        id=m.id,
        series=series_key(m.engine, m.kind, m.series),
        time=m.time.astimezone(UTC),
        ok=m.ok,
        verified=verified,
        locked=held or m.status == "running",
        pinned=m.pin is not None,
        pinned_until=m.pin.until.astimezone(UTC) if m.pin and m.pin.until else None,
    )


def decide(ctx: Context, manifests: list[Manifest], now: datetime) -> Decision:
    """The pure policy over a list of manifests (several series)."""
    policies: dict[str, Policy] = {}
    for m in manifests:
        key = series_key(m.engine, m.kind, m.series)
        if key not in policies:
            policies[key] = ctx.retention_policy(m.engine, m.kind, m.series)
    entries = [_entry(m, ctx.storage) for m in manifests]
    return apply_policy(entries, policies, now)


def plan(
    ctx: Context,
    *,
    engine: str | None = None,
    series: list[str] | None = None,
    kind: str | None = None,
    now: datetime | None = None,
) -> PrunePlan:
    """Everything prune would do, with reasons; changes nothing."""
    now = now or datetime.now(UTC)
    result = PrunePlan(now=now)
    inventory = ctx.catalog.inventory(engine)
    scan = ctx.catalog.scan(keys=inventory.manifest_keys)
    result.errors.extend(scan.errors)
    manifests = [
        m
        for m in scan.manifests
        if (kind is None or m.kind == kind) and (not series or m.series in series)
    ]
    for m in manifests:
        result.manifests[(series_key(m.engine, m.kind, m.series), m.id)] = m
    decision = decide(ctx, manifests, now) if manifests else None

    # PostgreSQL base backups: plug the WAL archive into the decision, per cluster.
    wal_actions: list[Action] = []
    if decision is not None:
        clusters = sorted(
            {m.series for m in manifests if m.engine == "postgresql" and m.kind == "base"}
        )
        for cluster in clusters:
            decision, actions = _wal_plan(ctx, cluster, manifests, decision, now)
            wal_actions.extend(actions)
    if decision is not None:
        for verdict in decision.verdicts:
            m = result.manifests[(verdict.entry.series, verdict.entry.id)]
            result.actions.append(
                Action(
                    what="backup",
                    action="keep" if verdict.keep else "drop",
                    series=verdict.entry.series,
                    name=m.id,
                    reasons=list(verdict.reasons),
                    size=m.stored_size,
                    tiers=list(verdict.tiers),
                    key=backup_prefix(m.engine, m.kind, m.series, m.id),
                    pin=m.pin.model_dump(mode="json") if m.pin else None,
                )
            )
    result.actions.extend(wal_actions)
    result.actions.extend(_stale_leftovers(ctx, inventory, now))
    if kind is None:
        result.actions.extend(_rejected_runs(ctx, engine, series, now))
    return result


def _rejected_runs(
    ctx: Context, engine: str | None, series: list[str] | None, now: datetime
) -> list[Action]:
    """Rejected runs (catalog/rejected.py) are kept for the failed-run grace, like failures."""
    actions = []
    for run in list_rejected(ctx.storage):
        m = run.manifest
        if (engine is not None and m.engine != engine) or (series and m.series not in series):
            continue
        grace = ctx.retention_policy(m.engine, m.kind, m.series).failed_grace
        within = now - m.time <= grace
        actions.append(
            Action(
                "rejected",
                "keep" if within else "drop",
                series_key(m.engine, m.kind, m.series),
                m.id,
                [f"rejected run (target does not exist), {'within' if within else 'past'} grace"],
                key=run.prefix,
            )
        )
    return actions


def _wal_plan(
    ctx: Context, cluster: str, manifests: list[Manifest], decision: Decision, now: datetime
) -> tuple[Decision, list[Action]]:
    series = series_key("postgresql", "base", cluster)
    bases = []
    for m in manifests:
        if m.engine != "postgresql" or m.kind != "base" or m.series != cluster:
            continue
        pg = m.postgres
        if pg is None or not pg.start_wal or pg.timeline is None:
            continue
        bases.append(
            BaseBackup(
                id=m.id,
                timeline=pg.timeline,
                start_wal=pg.start_wal,
                stop_wal=pg.stop_wal if m.ok else None,
                time=m.time.astimezone(UTC),
            )
        )
    objects: dict[str, list[WalObject]] = defaultdict(list)
    for info in ctx.storage.list(wal_prefix(cluster)):
        obj = parse_wal_key(info.key)
        if obj is not None:
            objects[obj.name].append(obj)
    # The series' decision for these base backups only.
    sub = Decision(
        now=decision.now,
        verdicts=tuple(v for v in decision.verdicts if v.entry.series == series),
        policies=decision.policies,
    )
    seg_size = next(
        (
            m.postgres.wal_segment_size
            for m in manifests
            if m.postgres and m.postgres.wal_segment_size
        ),
        16 * 1024 * 1024,
    )
    wal = apply_wal_policy(
        bases, sorted(objects), sub, ctx.settings.pitr_window, now, wal_segment_size=seg_size
    )
    amended = {v.entry.id: v for v in wal.bases.verdicts}
    merged = tuple(
        amended.get(v.entry.id, v) if v.entry.series == series else v for v in decision.verdicts
    )
    new_decision = Decision(now=decision.now, verdicts=merged, policies=decision.policies)
    actions = []
    for verdict in wal.segments:
        for obj in objects.get(verdict.name, []):
            actions.append(
                Action(
                    what="wal",
                    action="keep" if verdict.keep else "drop",
                    series=f"postgresql/wal/{cluster}",
                    name=verdict.name,
                    reasons=list(verdict.reasons),
                    key=obj.key,
                )
            )
    return new_decision, actions


def _stale_leftovers(ctx: Context, inventory: Inventory, now: datetime) -> list[Action]:
    """Temporaries of crashed writers and backup dirs without a manifest."""
    actions: list[Action] = []
    cutoff = (now - STALE_AFTER).timestamp()
    for info in inventory.partials:
        if info.mtime < cutoff and not _series_locked(ctx, info.key):
            actions.append(
                Action(
                    "partial",
                    "drop",
                    _series_of(info.key),
                    info.key,
                    ["stale partial"],
                    info.size,
                    key=info.key,
                )
            )
    for prefix in inventory.orphans:
        if prefix.startswith(WAL_ROOT) or _series_locked(ctx, prefix):
            continue
        files = inventory.dir_files.get(prefix, [])
        if files and max(f.mtime for f in files) >= cutoff:
            continue
        actions.append(
            Action(
                "orphan",
                "drop",
                _series_of(prefix),
                prefix,
                ["no manifest (crashed or half-pruned run)"],
                sum(f.size for f in files),
                key=prefix,
            )
        )
    return actions


def _series_of(key: str) -> str:
    parts = key.split("/")
    if len(parts) >= 3:
        return f"{parts[0]}/{parts[1]}/{decode_segment(parts[2])}"
    return key


def _series_locked(ctx: Context, key: str) -> bool:
    parts = key.split("/")
    if len(parts) < 3:
        return False
    return is_series_locked(ctx.storage, parts[0], parts[1], decode_segment(parts[2]))


def execute(ctx: Context, the_plan: PrunePlan) -> PruneResult:
    """Carry out the drops of a plan, manifest first; safe to re-run after a crash."""
    log = get_logger("prune")
    result = PruneResult(plan=the_plan)
    for action in the_plan.drops():
        if action.what == "backup":
            engine, kind, series = action.series.split("/", 2)
            m = the_plan.manifests[(action.series, action.name)]
            if is_backup_held(ctx.storage, engine, kind, series, m.id):
                result.skipped.append(f"{action.series} {m.id}: held by a running restore/verify")
                continue
            if _pinned_since_plan(ctx, m):
                result.skipped.append(f"{action.series} {m.id}: pinned after the plan was made")
                continue
            ctx.catalog.delete(m)
        elif action.what in ("wal", "partial"):
            ctx.storage.delete(action.key)
        elif action.what in ("orphan", "rejected"):
            ctx.storage.delete_tree(action.key)
        result.deleted += 1
        result.freed_bytes += action.size
        log.info(
            "pruned",
            extra={
                "what": action.what,
                "series": action.series,
                "item": action.name,
                "reasons": "; ".join(action.reasons),
            },
        )
    remove_empty_backup_dirs(ctx)
    return result


def _pinned_since_plan(ctx: Context, planned: Manifest) -> bool:
    """A pin written between the plan and the deletion wins (pin takes the series
    lock, prune takes it only to execute: the plan may be older than the pin)."""
    try:
        fresh = ctx.catalog.load(manifest_key(planned))
    except SeawallError:
        return False  # gone or unreadable: nothing to protect by skipping
    return fresh.pin != planned.pin and fresh.pinned(datetime.now(UTC))


def remove_empty_backup_dirs(ctx: Context) -> int:
    """Remove empty backup directories (a prune killed between a file and its rmdir).

    Listing works on files, so an empty directory is invisible to the
    catalog; this sweeps them, skipping the WAL archive and locked series.
    Object storage has no directories: nothing to sweep there.
    """
    vol = ctx.storage.local_volume()
    if vol is None:
        return 0
    root = vol.root
    removed = 0
    for engine_dir in ("postgresql", "qdrant"):
        base = root / engine_dir
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            parts = rel.split("/")
            if rel.startswith(WAL_ROOT) or len(parts) != 4 or not is_backup_id(parts[3]):
                continue
            if filenames or dirnames or _series_locked(ctx, rel):
                continue
            try:
                os.rmdir(dirpath)
                removed += 1
            except OSError:
                continue
    return removed


def prune_series(ctx: Context, engine: str, kind: str, series: str) -> PruneResult:
    """Retention for one series, called right after its successful backup.

    The caller already holds the series lock.
    """
    the_plan = plan(ctx, engine=engine, kind=kind, series=[series])
    the_plan.actions = [a for a in the_plan.actions if a.what in ("backup", "wal")]
    return execute(ctx, the_plan)
