"""Drill records in the catalog and drill reports on disk.

The record is the format the exporter reads (docs/exporter.md, "DR drill
records"): a regular manifest with ``kind: "drill"`` at
``drills/<engine>/<series>/<drill id>/manifest.json``, written atomically
like every manifest (temporary file, fsync, rename), with the extra object
``drill: {rto_seconds, rpo_seconds, backup_id, ...}``. The exporter turns the
newest record of each series into ``seawall_drill_*`` metrics.

The report (``--report DIR``) is the whole drill, every step and check, as
``<drill id>.json`` and ``<drill id>.md``. ``DIR`` is created when missing,
one level only (its parent must exist), and checked before the drill
starts (:func:`check_report_dir`): a typo (``/typo/reports``) used to create
the whole path and leave the report where nobody looks, after a drill that
may have run for an hour.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from seawall import __version__
from seawall.catalog.models import MANIFEST_NAME, Manifest
from seawall.catalog.naming import encode_segment
from seawall.drill.model import DrillResult, TargetResult
from seawall.errors import ConfigError, StorageError
from seawall.storage.base import Storage

DRILLS_DIR = "drills"


def record_key(engine: str, series: str, drill_id: str) -> str:
    return f"{DRILLS_DIR}/{engine}/{encode_segment(series)}/{drill_id}/{MANIFEST_NAME}"


def to_manifest(drill: DrillResult, t: TargetResult) -> Manifest:
    started = t.started_at or drill.started_at
    finished = t.finished_at or drill.finished_at or started
    return Manifest.model_validate(
        {
            "id": drill.id,
            "engine": t.engine,
            "kind": "drill",
            "series": t.series,
            "target": t.scratch or t.series,
            "status": "success" if t.passed else "failed",
            "started_at": started,
            "finished_at": finished,
            "duration_seconds": round((finished - started).total_seconds(), 3),
            "error": None if t.passed else t.message(),
            "seawall_version": __version__,
            "labels": {"method": t.method},
            "drill": {
                "rto_seconds": None if t.rto_seconds is None else round(t.rto_seconds, 3),
                "rpo_seconds": None if t.rpo_seconds is None else round(t.rpo_seconds, 3),
                "backup_id": t.backup_id,
                "method": t.method,
                "recovered_to": t.recovered_to.isoformat() if t.recovered_to else None,
                "rto_objective_seconds": drill.rto_objective,
                "rpo_objective_seconds": drill.rpo_objective,
                "failed_checks": t.failed_checks,
                "checks": [c.as_dict() for c in t.checks],
            },
        }
    )


def write_records(storage: Storage, drill: DrillResult) -> list[str]:
    """One record per target; returns the keys written."""
    keys: list[str] = []
    for t in drill.targets:
        key = record_key(t.engine, t.series, drill.id)
        storage.write_bytes(key, to_manifest(drill, t).to_json())
        keys.append(key)
    return keys


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def markdown(drill: DrillResult) -> str:
    """The report for people: verdict first, then objectives, then each target."""
    verdict = "PASSED" if drill.passed else "FAILED"
    lines = [
        f"# seawall drill {drill.id}: {verdict}",
        "",
        f"- started: {drill.started_at.isoformat()}",
        f"- finished: {drill.finished_at.isoformat() if drill.finished_at else '-'}",
        f"- objectives: RTO {_fmt(drill.rto_objective)}, RPO {_fmt(drill.rpo_objective)}"
        f" ({'met' if drill.objectives_met else 'MISSED'})",
        f"- total RTO (all targets one after another): {_fmt(drill.rto_total)}",
    ]
    if drill.leftovers_removed:
        lines.append("- leftovers of earlier drills removed: " + ", ".join(drill.leftovers_removed))
    for note in drill.notes:
        lines.append(f"- note: {note}")
    lines += ["", "## Objectives", "", "| target | measure | measured | objective | met |"]
    lines.append("|---|---|---|---|---|")
    for o in drill.objectives():
        met = "-" if o["met"] is None else ("yes" if o["met"] else "**NO**")
        lines.append(
            f"| {o['target']} | {o['measure']} | {_fmt(o['seconds'])} | "
            f"{_fmt(o['objective_seconds'])} | {met} |"
        )
    for t in drill.targets:
        lines += [
            "",
            f"## {t.engine} {t.method} {t.series}: {'passed' if t.passed else 'FAILED'}",
            "",
            f"- backup: {t.backup_id or '-'}; scratch: {t.scratch or '-'}",
            f"- RTO {_fmt(t.rto_seconds)}, RPO {_fmt(t.rpo_seconds)}"
            f" (recovered to {t.recovered_to.isoformat() if t.recovered_to else '-'})",
        ]
        if t.error:
            lines.append(f"- error: {t.error}")
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        for c in t.checks:
            lines.append(f"| {c.name} | {c.status} | {c.detail.replace('|', '/')} |")
        lines += ["", "| step | seconds | ok | detail |", "|---|---|---|---|"]
        for s in t.steps:
            detail = s.detail.replace("|", "/")
            lines.append(f"| {s.name} | {s.seconds:.3f} | {'yes' if s.ok else 'NO'} | {detail} |")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, data: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_report_dir(directory: Path) -> None:
    """Refuse (exit 2, before the drill runs) a ``--report`` directory that is a
    file, or is missing along with its parent."""
    if directory.is_dir():
        return
    if directory.exists():
        raise ConfigError(f"--report {directory} is not a directory; give a directory")
    if not directory.parent.is_dir():
        raise ConfigError(
            f"--report {directory}: its parent {directory.parent} does not exist; fix the path "
            "or create the parent directory first"
        )


def write_report(directory: Path, drill: DrillResult) -> tuple[Path, Path]:
    """``<id>.json`` and ``<id>.md`` in ``directory`` (created if missing, one
    level only: see :func:`check_report_dir`)."""
    try:
        directory.mkdir(exist_ok=True)
        js = directory / f"{drill.id}.json"
        md = directory / f"{drill.id}.md"
        _atomic_write(js, json.dumps(drill.as_dict(), indent=2) + "\n")
        _atomic_write(md, markdown(drill))
    except OSError as exc:
        raise StorageError(
            f"cannot write the drill report to {directory}: {exc.strerror or exc}; "
            "choose a writable --report directory"
        ) from None
    return js, md
