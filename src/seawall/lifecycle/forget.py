"""Forget: delete one backup, or a whole series, on the operator's word.

The plan is computed first and printed (a dry run is the default); the
deletion then removes exactly the planned backups through prune's own code
(:func:`seawall.app.prune.execute`: manifest first, then artifacts, held
backups skipped), under each series' lock. The safety net: the newest
successful backup of a *live* series (one that has run within
``RETENTION_FAILED_GRACE``), and a pinned backup, are not forgotten without
``force``; a series nothing has backed up for longer, or one that never
succeeded, can be forgotten whole without it. The WAL archive is never
touched here: prune drops the WAL no remaining base backup needs.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seawall.app.prune import Action, PrunePlan, PruneResult, execute
from seawall.catalog.locks import series_lock
from seawall.catalog.models import Manifest, utcnow
from seawall.catalog.rejected import RejectedRun, list_rejected
from seawall.catalog.store import backup_prefix
from seawall.context import Context
from seawall.errors import NotFoundError, RefusedError
from seawall.lifecycle.select import Selector, candidates, resolve_one, series_label


@dataclass
class ForgetPlan:
    """What forget would delete, and what it refuses to without --force."""

    now: datetime
    backups: list[Manifest] = field(default_factory=list)
    rejected: list[RejectedRun] = field(default_factory=list)
    #: newest successful backups of live series, and pinned backups, in the selection
    protected: list[Manifest] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "backups": [
                {
                    "series": series_label(m),
                    "id": m.id,
                    "status": m.status,
                    "time": m.time.isoformat(),
                    "size": m.stored_size,
                    "pinned": m.pin is not None,
                    "needs_force": m in self.protected,
                }
                for m in self.backups
            ],
            "rejected_runs": [r.to_dict() for r in self.rejected],
            "freed_bytes": sum(m.stored_size for m in self.backups),
        }


def _live(ctx: Context, group: list[Manifest], now: datetime) -> bool:
    """A series that has run within its failed-run grace is still backed up."""
    m = group[0]
    grace = ctx.retention_policy(m.engine, m.kind, m.series).failed_grace
    newest = max(x.time for x in group)
    return now - newest <= grace


def plan(
    ctx: Context, ref: str | None, sel: Selector, *, now: datetime | None = None
) -> ForgetPlan:
    """One backup (``ref``) or every backup of the selected series."""
    now = now or utcnow()
    result = ForgetPlan(now=now)
    if ref is not None:
        chosen = [resolve_one(ctx, ref, sel)]
    else:
        if sel.series is None:
            raise RefusedError(
                "forget needs a backup id or --series NAME (a whole series); "
                "it never forgets the whole catalog"
            )
        chosen = candidates(ctx, sel)
        result.rejected = [r for r in list_rejected(ctx.storage) if sel.matches(r.manifest)]
        if not chosen and not result.rejected:
            raise NotFoundError(
                f"no backups and no rejected runs of {sel.describe()} in "
                f"{ctx.storage.describe()}; `seawall info` lists the series"
            )
    result.backups = chosen
    for key in sorted({series_label(m) for m in chosen}):
        group = [m for m in candidates(ctx, _selector_of(key)) if series_label(m) == key]
        good = [m for m in group if m.ok]
        if good and _live(ctx, group, now) and good[0] in chosen:
            result.protected.append(good[0])
    # a pin says "keep": forgetting it is as deliberate as the newest one
    result.protected += [m for m in chosen if m.pinned(now) and m not in result.protected]
    return result


def _selector_of(key: str) -> Selector:
    engine, kind, series = key.split("/", 2)
    return Selector(engine, kind, series)


def refusal(the_plan: ForgetPlan) -> RefusedError | None:
    """Why forgetting as planned needs --force, or None."""
    if not the_plan.protected:
        return None
    names = ", ".join(f"{series_label(m)} {m.id}" for m in the_plan.protected)
    return RefusedError(
        f"refusing to forget the newest successful backup of a live series, or a pinned "
        f"backup ({names}): a restore would use it today, or someone pinned it; "
        "add --force if that is really meant"
    )


def execute_plan(ctx: Context, the_plan: ForgetPlan, *, force: bool = False) -> PruneResult:
    """Delete exactly the planned backups (manifest first) and rejected runs."""
    why = refusal(the_plan)
    if why is not None and not force:
        raise why
    prune_plan = PrunePlan(now=the_plan.now)
    for m in the_plan.backups:
        key = series_label(m)
        prune_plan.manifests[(key, m.id)] = m
        prune_plan.actions.append(
            Action(
                what="backup",
                action="drop",
                series=key,
                name=m.id,
                reasons=["forgotten by the operator"],
                size=m.stored_size,
                key=backup_prefix(m.engine, m.kind, m.series, m.id),
            )
        )
    for r in the_plan.rejected:
        prune_plan.actions.append(
            Action(
                what="orphan",  # a directory removed as a whole
                action="drop",
                series=series_label(r.manifest),
                name=r.manifest.id,
                reasons=["rejected run forgotten by the operator"],
                key=r.prefix,
            )
        )
    s = ctx.settings
    with ExitStack() as stack:
        for key in sorted({series_label(m) for m in the_plan.backups}):
            engine, kind, series = key.split("/", 2)
            stack.enter_context(
                series_lock(
                    ctx.storage, engine, kind, series, timeout=s.lock_timeout, command="forget"
                )
            )
        return execute(ctx, prune_plan)
