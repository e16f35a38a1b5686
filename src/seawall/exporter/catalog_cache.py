"""The catalog as the exporter sees it: read fresh at every scrape, parsed once.

Why a cache keyed on ``(path, mtime_ns, size)``: the catalog is the truth and
must be re-read at each scrape (a backup finished a second ago must show),
but parsing 10,000 JSON manifests with pydantic takes about a second. A
``stat`` is a thousand times cheaper, and manifests are only ever replaced
by an atomic rename (new inode, new mtime), so an unchanged stat means an
unchanged manifest. Entries whose file vanished are dropped, so a pruned
backup or a removed series disappears from the metrics at the next scrape.

Only a slim :class:`Record` per manifest is kept (not the pydantic model)
so 10,000 backups stay within a few megabytes.

The walk knows the layout (``<engine>/<kind>/<series>/<id>/manifest.json``)
and never descends into the WAL archive (``postgresql/wal``, watched by
:mod:`seawall.exporter.wal_watch` instead). Drill records live under
``drills/<engine>/<series>/<id>/manifest.json`` (see docs/exporter.md).

Never raises for bad content: a corrupt, foreign or unreadable manifest is
counted in :attr:`CatalogSnapshot.errors` and skipped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seawall.catalog.models import MANIFEST_NAME, Manifest
from seawall.catalog.naming import decode_segment, is_backup_id
from seawall.catalog.store import CatalogError, parse_manifest
from seawall.catalog.wal_layout import WAL_ROOT
from seawall.retention.walnames import DEFAULT_WAL_SEGMENT_SIZE, lsn_to_segment_name, parse_lsn

log = logging.getLogger("seawall.exporter.catalog")

ENGINES = ("postgresql", "qdrant")
DRILLS_DIR = "drills"
_WAL_KIND = WAL_ROOT.split("/", 1)[1]  # "wal" under postgresql/

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
    timeline: int | None = None
    start_wal: str | None = None
    stop_wal: str | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None


@dataclass
class SeriesGroup:
    """The records of one series; ``signature`` changes iff a manifest did."""

    key: SeriesKey
    records: list[Record] = field(default_factory=list)
    signature: tuple[tuple[str, int, int], ...] = ()


@dataclass
class CatalogSnapshot:
    """One scrape's view: series groups, bad manifests, and whether the root exists."""

    groups: dict[SeriesKey, SeriesGroup] = field(default_factory=dict)
    drills: dict[SeriesKey, SeriesGroup] = field(default_factory=dict)
    errors: int = 0
    readable: bool = True
    manifests: int = 0


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
        timeline=timeline,
        start_wal=start_wal,
        stop_wal=stop_wal,
        rto_seconds=rto,
        rpo_seconds=rpo,
    )


class CatalogCache:
    """Reads the catalog at each :meth:`scan`; re-parses only changed manifests.

    ``enabled=False`` is the naive mode (``--no-cache``) used by the bench to
    show what the cache is worth: every manifest is parsed at every scrape.
    """

    def __init__(self, backup_dir: Path, *, enabled: bool = True) -> None:
        self.root = Path(backup_dir)
        self.enabled = enabled
        # path -> ((mtime_ns, size), Record, or the error message)
        self._entries: dict[str, tuple[tuple[int, int], Record | str]] = {}
        self.parsed = 0  # manifests parsed so far (for tests: the cache works)

    def scan(self) -> CatalogSnapshot:
        snap = CatalogSnapshot()
        if not self.root.is_dir():
            snap.readable = False
            self._entries.clear()
            return snap
        seen: dict[str, tuple[tuple[int, int], Record | str]] = {}
        for engine in ENGINES:
            for kind in _dirs(os.path.join(self.root, engine), snap):
                if engine == "postgresql" and kind.name == _WAL_KIND:
                    continue
                for series in _dirs(kind.path, snap):
                    key = (engine, kind.name, decode_segment(series.name))
                    self._scan_series(series.path, key, snap.groups, snap, seen)
        for engine_dir in _dirs(os.path.join(self.root, DRILLS_DIR), snap):
            for series in _dirs(engine_dir.path, snap):
                key = (engine_dir.name, "drill", decode_segment(series.name))
                self._scan_series(series.path, key, snap.drills, snap, seen)
        self._entries = seen if self.enabled else {}
        return snap

    def _scan_series(
        self,
        path: str,
        key: SeriesKey,
        into: dict[SeriesKey, SeriesGroup],
        snap: CatalogSnapshot,
        seen: dict[str, tuple[tuple[int, int], Record | str]],
    ) -> None:
        group = SeriesGroup(key)
        signature: list[tuple[str, int, int]] = []
        for backup in _dirs(path, snap):
            if not is_backup_id(backup.name):
                continue
            mpath = os.path.join(backup.path, MANIFEST_NAME)
            try:
                st = os.stat(mpath)
            except FileNotFoundError:
                continue  # no manifest: not a backup (yet, or half-deleted)
            except OSError as exc:
                snap.errors += 1
                log.warning("cannot stat %s: %s", mpath, exc.strerror)
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._entries.get(mpath)
            if cached is not None and cached[0] == stamp:
                value = cached[1]
            else:
                value = self._parse(mpath, key, backup.name)
            seen[mpath] = (stamp, value)
            if isinstance(value, str):
                snap.errors += 1
                continue
            group.records.append(value)
            signature.append((backup.name, *stamp))
            snap.manifests += 1
        if group.records:
            signature.sort()
            group.signature = tuple(signature)
            group.records.sort(key=lambda r: (r.time, r.id), reverse=True)
            into[key] = group

    def _parse(self, mpath: str, key: SeriesKey, backup_id: str) -> Record | str:
        self.parsed += 1
        where = os.path.relpath(mpath, self.root)
        try:
            with open(mpath, "rb") as fh:
                manifest = parse_manifest(fh.read(), where)
        except OSError as exc:
            msg = f"{where}: unreadable ({exc.strerror})"
            log.warning("%s", msg)
            return msg
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


def _dirs(path: str, snap: CatalogSnapshot) -> list[os.DirEntry[str]]:
    """Sub-directories (no hidden ones); an unreadable directory is an error."""
    try:
        with os.scandir(path) as it:
            return [e for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []
    except OSError as exc:
        snap.errors += 1
        log.warning("cannot list %s: %s", path, exc.strerror)
        return []
