"""``seawall postgres list``: the catalog of logical backups as rows.

Retention tiers (which GFS buckets keep a backup) come from the same pure
``apply_policy`` that prune uses, so the list shows what prune would keep.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from seawall.catalog.models import Manifest, utcnow
from seawall.context import Context
from seawall.retention import Entry, apply_policy

ENGINE = "postgresql"
KIND = "logical"


@dataclass
class Row:
    id: str
    database: str
    type: str
    time: str
    size: int
    raw_size: int
    compression: str
    encrypted: bool
    verified: bool | None
    verified_deep: bool | None
    #: stored | decoded | deep (see catalog.models.VerificationLevel)
    verified_level: str | None
    status: str
    tiers: list[str]
    error: str | None
    #: ``pinned``/``pinned until …: note`` (``seawall pin``), "" when not pinned
    pinned: str = ""
    pin: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tiers(ctx: Context, manifests: list[Manifest]) -> dict[tuple[str, str], list[str]]:
    entries = [
        Entry(
            id=m.id,
            series=m.series,
            time=m.time,
            ok=m.ok,
            verified=m.verification.ok if m.verification else None,
        )
        for m in manifests
    ]
    try:
        decision = apply_policy(entries, lambda s: ctx.retention_policy(ENGINE, KIND, s), utcnow())
    except Exception:  # an invalid policy must not hide the list
        return {}
    return {(v.entry.series, v.entry.id): list(v.tiers) for v in decision.verdicts}


def rows(ctx: Context, database: str | None = None) -> tuple[list[Row], list[str]]:
    scan = ctx.catalog.scan(ENGINE, KIND, database)
    tiers = _tiers(ctx, scan.manifests)
    now = utcnow()
    out: list[Row] = []
    for m in scan.manifests:
        dump = m.artifact("dump")
        out.append(
            Row(
                id=m.id,
                database=m.series,
                type=m.kind,
                time=m.time.isoformat(timespec="seconds"),
                size=m.stored_size,
                raw_size=m.raw_size,
                compression=dump.compression if dump else "-",
                encrypted=bool(dump and dump.encryption),
                verified=m.verification.ok if m.verification else None,
                verified_deep=m.verification.deep if m.verification else None,
                verified_level=m.verification.effective_level if m.verification else None,
                status=m.status,
                tiers=tiers.get((m.series, m.id), []),
                error=m.error,
                pinned=m.pin.describe(now) if m.pin else "",
                pin=m.pin.model_dump(mode="json") if m.pin else None,
            )
        )
    return out, scan.errors
