"""What the exporter keeps of the catalog: one slim record per manifest.

Why its own module: two readers build the same records — the catalog cache
on a local volume (stat, inotify) and the listed catalog on object storage
(a periodic listing) — and the collector only ever sees these types.

Only a slim :class:`Record` per manifest is kept (not the pydantic model),
so 10,000 backups stay within a few megabytes. :func:`parse_record` never
raises for bad content: a corrupt or foreign manifest comes back as the
reason it is unusable, which the caller counts as a catalog error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from seawall.catalog.models import MANIFEST_NAME, Manifest
from seawall.catalog.naming import decode_segment, is_backup_id
from seawall.catalog.store import CatalogError, parse_manifest
from seawall.exporter.metrics_def import VERIFICATION_LEVELS
from seawall.walcore.layout import WAL_ROOT
from seawall.walcore.lsn import lsn_to_segment_name, parse_lsn
from seawall.walcore.names import DEFAULT_WAL_SEGMENT_SIZE

log = logging.getLogger("seawall.exporter.catalog")

ENGINES = ("postgresql", "qdrant")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # real manifests are a few KiB
DRILLS_DIR = "drills"
WAL_KIND = WAL_ROOT.split("/", 1)[1]  # "wal" under postgresql/

SeriesKey = tuple[str, str, str]  # (engine, kind, series); kind "drill" for drills


@dataclass(frozen=True, slots=True)
class Record:
    """What the metrics need from one manifest (times as UNIX seconds)."""

    id: str
    engine: str
    kind: str
    series: str
    status: str
    time: float  # end of the run (start for runs without an end)
    finished: float | None
    duration: float | None
    stored_size: int
    verified_at: float | None = None
    verified_ok: bool | None = None
    verified_level: int | None = None  # VERIFICATION_LEVELS[verification.effective_level]
    timeline: int | None = None
    start_wal: str | None = None
    stop_wal: str | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    pinned: bool = False
    pinned_until: float | None = None  # None with pinned: for good


@dataclass
class SeriesGroup:
    """The records of one series; ``signature`` changes iff a manifest did."""

    key: SeriesKey
    records: list[Record] = field(default_factory=list)
    signature: int = 0  # a new number whenever the records were re-read


@dataclass
class CatalogSnapshot:
    """One scrape's view: series groups, bad manifests, and whether the root exists."""

    groups: dict[SeriesKey, SeriesGroup] = field(default_factory=dict)
    drills: dict[SeriesKey, SeriesGroup] = field(default_factory=dict)
    errors: int = 0
    readable: bool = True
    manifests: int = 0
    #: end times of the rejected runs (catalog/rejected.py), newest first, when the
    #: snapshot knows them (a listed repository); None: the collector reads them
    rejected: list[float] | None = None


def _ts(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def _wal_range(m: Manifest) -> tuple[int | None, str | None, str | None]:
    """Timeline and first/last WAL segment of a base backup, if recorded."""
    pg = m.postgres
    if pg is None or pg.timeline is None:
        return None, None, None
    size = pg.wal_segment_size or DEFAULT_WAL_SEGMENT_SIZE
    start, stop = pg.start_wal, pg.stop_wal
    try:
        if start is None and pg.start_lsn:
            start = lsn_to_segment_name(pg.start_lsn, pg.timeline, size)
        if stop is None and pg.stop_lsn:
            pos = parse_lsn(pg.stop_lsn)
            # a stop LSN on a segment boundary ends in the previous segment
            pos = pos - 1 if pos % size == 0 and pos > 0 else pos
            stop = lsn_to_segment_name(pos, pg.timeline, size)
    except ValueError:
        return pg.timeline, None, None
    return pg.timeline, start, stop


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def to_record(m: Manifest) -> Record:
    """Reduce a manifest to what the collector needs."""
    timeline, start_wal, stop_wal = _wal_range(m) if m.kind == "base" else (None, None, None)
    rto = rpo = None
    if m.kind == "drill":
        extra = (m.model_extra or {}).get("drill")
        if isinstance(extra, dict):
            rto = _float(extra.get("rto_seconds"))
            rpo = _float(extra.get("rpo_seconds"))
    v = m.verification
    return Record(
        id=m.id,
        engine=m.engine,
        kind=m.kind,
        series=m.series,
        status=m.status,
        time=m.time.timestamp(),
        finished=_ts(m.finished_at),
        duration=m.duration_seconds,
        stored_size=m.stored_size,
        verified_at=v.at.timestamp() if v is not None else None,
        verified_ok=v.ok if v is not None else None,
        verified_level=VERIFICATION_LEVELS[v.effective_level] if v is not None else None,
        timeline=timeline,
        start_wal=start_wal,
        stop_wal=stop_wal,
        rto_seconds=rto,
        rpo_seconds=rpo,
        pinned=m.pin is not None,
        pinned_until=_ts(m.pin.until) if m.pin is not None else None,
    )


def manifest_place(key: str) -> tuple[SeriesKey, str, bool] | None:
    """Where a manifest key sits: (series key, backup id, is a drill record), or None.

    The layout is ``<engine>/<kind>/<series>/<id>/manifest.json`` for backups
    and ``drills/<engine>/<series>/<id>/manifest.json`` for drill records;
    anything else (the WAL archive, rejected runs, locks) is not a backup.
    """
    parts = key.split("/")
    if len(parts) != 5 or parts[4] != MANIFEST_NAME or not is_backup_id(parts[3]):
        return None
    if any(p.startswith(".") for p in parts[:4]):
        return None
    top, second, series, backup_id = parts[0], parts[1], parts[2], parts[3]
    if top == DRILLS_DIR:
        return (second, "drill", decode_segment(series)), backup_id, True
    if top not in ENGINES or (top == ENGINES[0] and second == WAL_KIND):
        return None
    return (top, second, decode_segment(series)), backup_id, False


def parse_record(data: bytes, where: str, key: SeriesKey, backup_id: str) -> Record | str:
    """A manifest's Record, or why it is not a usable manifest (logged once here)."""
    try:
        manifest = parse_manifest(data, where)
    except CatalogError as exc:
        log.warning("%s", exc)
        return str(exc)
    engine, kind, series = key
    if (manifest.engine, manifest.kind, manifest.series, manifest.id) != (
        engine,
        kind,
        series,
        backup_id,
    ):
        msg = (
            f"{where}: foreign manifest (it describes {manifest.engine}/{manifest.kind}/"
            f"{manifest.series}/{manifest.id}, not the directory it is in)"
        )
        log.warning("%s", msg)
        return msg
    return to_record(manifest)
