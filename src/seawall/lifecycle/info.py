"""``seawall info``: the repository at a glance, in the spirit of ``pgbackrest info``.

Per series: every backup with its sizes, retention tiers and verdict (the
same plan ``prune --dry-run`` prints), pin and latest verification; per
cluster: the WAL archive's range and size per timeline; and the
repository's usage (what seawall stores, and the volume's capacity).
Read-only: it takes no lock and writes nothing, so it is safe while
backups run.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seawall.catalog.models import Manifest, utcnow
from seawall.catalog.naming import decode_segment
from seawall.catalog.rejected import list_rejected
from seawall.catalog.wal_layout import wal_clusters
from seawall.context import Context
from seawall.errors import SeawallError
from seawall.walcore.archived import parse_wal_key
from seawall.walcore.layout import ARCHIVE_INFO, WAL_ROOT
from seawall.walcore.names import DEFAULT_WAL_SEGMENT_SIZE, parse_wal_name, segment_name


@dataclass
class TimelineInfo:
    timeline: int
    first: str
    last: str
    segments: int = 0
    bytes: int = 0
    missing: int = 0  # segments absent between first and last

    def to_dict(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "first": self.first,
            "last": self.last,
            "segments": self.segments,
            "bytes": self.bytes,
            "missing": self.missing,
        }


@dataclass
class WalInfo:
    cluster: str
    timelines: list[TimelineInfo] = field(default_factory=list)
    files: int = 0  # segments, partials, .backup and .history files
    bytes: int = 0
    #: the recoverable window as `postgres wal-check` computes it (None: nothing)
    window: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "files": self.files,
            "bytes": self.bytes,
            "timelines": [t.to_dict() for t in self.timelines],
            "recoverable_window": self.window,
        }


def _window(ctx: Context, cluster: str, size: int, now: datetime) -> dict[str, Any] | None:
    """``wal-check``'s recoverable window for one cluster (its code, not a copy)."""
    from seawall.postgres.physical.basebackup import base_manifests
    from seawall.postgres.physical.pitr_plan import base_ref
    from seawall.postgres.wal.archive import (
        analyse,
        list_archive,
        load_histories,
    )

    listing = list_archive(ctx.storage, cluster, size)
    # encrypted history files without the identity: timelines assumed promotions
    with contextlib.suppress(Exception):
        load_histories(listing, ctx.storage, ctx.keys)
    refs = [r for m in base_manifests(ctx, cluster) if (r := base_ref(m, listing))]
    report = analyse(listing, cluster, refs, now)
    if report.earliest is None or report.latest is None:
        return None
    return {
        "earliest": report.earliest.isoformat(),
        "latest": report.latest.isoformat(),
        "latest_lsn": report.latest_lsn,
        "seconds": (report.latest - report.earliest).total_seconds(),
    }


def _backup_row(m: Manifest, verdict: Any, now: datetime) -> dict[str, Any]:
    v = m.verification
    return {
        "id": m.id,
        "status": m.status,
        "started_at": m.started_at.isoformat(),
        "finished_at": m.finished_at.isoformat() if m.finished_at else None,
        "duration_seconds": m.duration_seconds,
        "stored_bytes": m.stored_size,
        "raw_bytes": m.raw_size,
        "tiers": list(verdict.tiers) if verdict is not None else [],
        "retention": (
            {"action": verdict.action, "reasons": verdict.reasons} if verdict is not None else None
        ),
        "pin": m.pin.model_dump(mode="json") if m.pin else None,
        "pinned": m.pinned(now),
        "verification": (
            {"at": v.at.isoformat(), "ok": v.ok, "deep": v.deep, "message": v.message}
            if v is not None
            else None
        ),
        "error": m.error,
    }


def _exists(ctx: Context) -> bool:
    """Whether the repository is there (a directory; a bucket that answers a listing)."""
    vol = ctx.storage.local_volume()
    if vol is not None:
        return vol.root.is_dir()
    try:
        next(iter(ctx.storage.list("")), None)
    except SeawallError:
        return False
    return True


def wal_info(ctx: Context, now: datetime | None = None) -> list[WalInfo]:
    """Every cluster's archive: files, bytes, and per timeline its range."""
    clusters = wal_clusters(ctx.storage)
    out = []
    for encoded in clusters:
        info = WalInfo(decode_segment(encoded))
        size = _segment_size(ctx, encoded)
        per_tl: dict[int, dict[int, int]] = {}
        for obj in ctx.storage.list(f"{WAL_ROOT}/{encoded}"):
            wal = parse_wal_key(obj.key)
            if wal is None:
                continue
            info.files += 1
            info.bytes += obj.size
            if not wal.is_segment:
                continue
            parsed = parse_wal_name(wal.name, size)
            if parsed.segno is not None:
                per_tl.setdefault(parsed.timeline, {})[parsed.segno] = obj.size
        for tl, segs in sorted(per_tl.items()):
            names = sorted(segs)
            info.timelines.append(
                TimelineInfo(
                    timeline=tl,
                    first=segment_name(tl, names[0], size),
                    last=segment_name(tl, names[-1], size),
                    segments=len(segs),
                    bytes=sum(segs.values()),
                    missing=names[-1] - names[0] + 1 - len(names),
                )
            )
        try:
            info.window = _window(ctx, info.cluster, size, now or utcnow())
        except SeawallError:
            info.window = None
        out.append(info)
    return out


def _segment_size(ctx: Context, encoded_cluster: str) -> int:
    """The archive's segment size from its archive.json (16 MiB if unreadable)."""
    try:
        data = json.loads(ctx.storage.read_bytes(f"{WAL_ROOT}/{encoded_cluster}/{ARCHIVE_INFO}"))
        size = int(data["wal_segment_size"])
    except (SeawallError, ValueError, KeyError, TypeError):
        return DEFAULT_WAL_SEGMENT_SIZE
    return size if size > 0 else DEFAULT_WAL_SEGMENT_SIZE


def info(ctx: Context, *, now: datetime | None = None) -> dict[str, Any]:
    """The report as a JSON-able dict (the text form is rendered from it)."""
    from seawall.app.prune import plan

    now = now or utcnow()
    errors: list[str] = []
    scan = ctx.catalog.scan()
    errors.extend(scan.errors)
    verdicts: dict[tuple[str, str], Any] = {}
    try:
        the_plan = plan(ctx, now=now)
    except SeawallError as exc:  # an invalid policy must not hide the catalog
        errors.append(f"retention not evaluated: {exc}")
    else:
        verdicts = {(a.series, a.name): a for a in the_plan.actions if a.what == "backup"}
    groups: dict[tuple[str, str, str], list[Manifest]] = {}
    for m in scan.manifests:  # newest first
        groups.setdefault((m.engine, m.kind, m.series), []).append(m)
    series: list[dict[str, Any]] = []
    backups_bytes = 0
    for (engine, kind, name), ms in sorted(groups.items()):
        key = f"{engine}/{kind}/{name}"
        good = [m for m in ms if m.ok]
        backups_bytes += sum(m.stored_size for m in ms)
        series.append(
            {
                "engine": engine,
                "kind": kind,
                "series": name,
                "backups": [_backup_row(m, verdicts.get((key, m.id)), now) for m in ms],
                "successful": len(good),
                "failed": sum(1 for m in ms if m.status == "failed"),
                "pinned": sum(1 for m in ms if m.pinned(now)),
                "stored_bytes": sum(m.stored_size for m in ms),
                "raw_bytes": sum(m.raw_size for m in ms),
                "last_success": good[0].time.isoformat() if good else None,
            }
        )
    wal = wal_info(ctx, now)
    usage = ctx.storage.usage()
    rejected = list_rejected(ctx.storage)
    wal_bytes = sum(w.bytes for w in wal)
    return {
        "now": now.isoformat(),
        "repository": {
            "path": ctx.storage.describe(),
            "exists": _exists(ctx),
            "backups_bytes": backups_bytes,
            "wal_bytes": wal_bytes,
            "stored_bytes": backups_bytes + wal_bytes,
            "volume": (
                {"size_bytes": usage.total, "used_bytes": usage.used, "free_bytes": usage.free}
                if usage is not None
                else None
            ),
        },
        "series": series,
        "wal": [w.to_dict() for w in wal],
        "rejected_runs": [r.to_dict() for r in rejected],
        "errors": errors,
    }
