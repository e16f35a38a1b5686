"""What ``seawall status`` reports, as data, and how it reads for people.

Why a separate model: the same report is printed as one screen, as JSON for
scripts, and turned into the exit code; the gathering (``status.py``) stays
free of formatting and the formatting free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from seawall.units import human_duration, human_size

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing that is wrong, and the command that fixes it.

    ``error`` makes status exit non-zero; ``warning`` is shown but does not
    (e.g. no drill recorded while no drill objective is configured).
    """

    severity: Severity
    subject: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
        }

    def line(self) -> str:
        return f"{self.severity.upper():<7} {self.subject}: {self.message}\n        fix: {self.fix}"


@dataclass
class SeriesStatus:
    """The newest backup of one series against its schedule."""

    engine: str
    kind: str
    series: str
    expected_every_seconds: float
    grace_seconds: float
    newest_id: str | None = None
    newest_time: datetime | None = None
    age_seconds: float | None = None
    verified: bool | None = None  # None: never verified
    verification_message: str | None = None
    last_run_status: str | None = None
    last_run_error: str | None = None
    backups: int = 0
    stored_bytes: int = 0

    @property
    def name(self) -> str:
        return f"{self.engine}/{self.kind}/{self.series}"

    @property
    def stale(self) -> bool:
        limit = self.expected_every_seconds + self.grace_seconds
        return self.age_seconds is None or self.age_seconds > limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "kind": self.kind,
            "series": self.series,
            "newest": self.newest_id,
            "newest_time": self.newest_time.isoformat() if self.newest_time else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "expected_every_seconds": self.expected_every_seconds,
            "grace_seconds": self.grace_seconds,
            "stale": self.stale,
            "verified": self.verified,
            "verification": self.verification_message,
            "last_run_status": self.last_run_status,
            "last_run_error": self.last_run_error,
            "backups": self.backups,
            "stored_bytes": self.stored_bytes,
        }


@dataclass
class PitrStatus:
    """A cluster's recoverable window and archive lag (from the wal-check analysis)."""

    cluster: str
    earliest: datetime | None
    latest: datetime | None
    latest_lsn: str | None
    newest_segment: str | None
    lag_seconds: float | None
    segments: int
    gaps: list[str]
    stored_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "latest": self.latest.isoformat() if self.latest else None,
            "latest_lsn": self.latest_lsn,
            "newest_segment": self.newest_segment,
            "wal_lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 1),
            "segments": self.segments,
            "gaps": self.gaps,
            "stored_bytes": self.stored_bytes,
        }


@dataclass
class DrillStatus:
    """The newest drill record of one series (docs/exporter.md, "DR drill records")."""

    engine: str
    series: str
    id: str
    time: datetime
    passed: bool
    error: str | None
    rto_seconds: float | None
    rpo_seconds: float | None
    rto_objective_seconds: float
    rpo_objective_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "series": self.series,
            "id": self.id,
            "time": self.time.isoformat(),
            "passed": self.passed,
            "error": self.error,
            "rto_seconds": self.rto_seconds,
            "rpo_seconds": self.rpo_seconds,
            "rto_objective_seconds": self.rto_objective_seconds,
            "rpo_objective_seconds": self.rpo_objective_seconds,
        }


@dataclass
class StatusReport:
    now: datetime
    repository: str
    series: list[SeriesStatus] = field(default_factory=list)
    pitr: list[PitrStatus] = field(default_factory=list)
    drills: list[DrillStatus] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    backup_bytes: int = 0
    wal_bytes: int = 0
    volume_total: int | None = None
    volume_free: int | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def safe(self) -> bool:
        return not self.errors

    def problem(self, severity: Severity, subject: str, message: str, fix: str) -> None:
        self.problems.append(Problem(severity, subject, message, fix))

    def to_dict(self) -> dict[str, Any]:
        return {
            "safe": self.safe,
            "now": self.now.isoformat(),
            "repository": self.repository,
            "storage": {
                "backup_bytes": self.backup_bytes,
                "wal_bytes": self.wal_bytes,
                "volume_total_bytes": self.volume_total,
                "volume_free_bytes": self.volume_free,
            },
            "series": [s.to_dict() for s in self.series],
            "pitr": [p.to_dict() for p in self.pitr],
            "drills": [d.to_dict() for d in self.drills],
            "problems": [p.to_dict() for p in self.problems],
        }


def _when(t: datetime | None) -> str:
    return t.isoformat(timespec="seconds") if t else "-"


def render(report: StatusReport) -> list[str]:
    """The one screen: verdict, storage, series, PITR, drills, then what to fix."""
    n_err, n_warn = len(report.errors), len(report.warnings)
    verdict = "SAFE" if report.safe else "NOT SAFE"
    counts = f"{n_err} problem(s), {n_warn} warning(s)"
    lines = [f"seawall status: {verdict} ({counts})", f"repository: {report.repository}"]
    volume = ""
    if report.volume_total:
        used = report.volume_total - (report.volume_free or 0)
        volume = (
            f"; volume {100 * used / report.volume_total:.0f}% used, "
            f"{human_size(report.volume_free)} free"
        )
    lines.append(
        f"storage: backups {human_size(report.backup_bytes)}, WAL {human_size(report.wal_bytes)}{volume}"
    )
    lines += ["", "backups (newest successful per series):"]
    if not report.series:
        lines.append("  none")
    for s in report.series:
        verified = {True: "verified", False: "VERIFY FAILED", None: "not verified"}[s.verified]
        state = "STALE" if s.stale else "ok"
        lines.append(
            f"  {s.name}: {s.newest_id or 'none'}, age {human_duration(s.age_seconds)} "
            f"(expected every {human_duration(s.expected_every_seconds)} "
            f"+ {human_duration(s.grace_seconds)}) {state}, {verified}"
        )
    if report.pitr:
        lines += ["", "point-in-time recovery:"]
    for p in report.pitr:
        window = (
            f"{_when(p.earliest)} .. {_when(p.latest)}"
            if p.earliest and p.latest
            else "nothing recoverable"
        )
        gaps = f"{len(p.gaps)} GAP(S)" if p.gaps else "no gaps"
        lines.append(
            f"  cluster {p.cluster}: window {window}; WAL lag {human_duration(p.lag_seconds)} "
            f"(newest {p.newest_segment or '-'}); {p.segments} segments, {gaps}"
        )
    lines += ["", "drills:"]
    if not report.drills:
        lines.append("  no drill recorded")
    for d in report.drills:
        verdict_d = "passed" if d.passed else "FAILED"
        lines.append(
            f"  {d.engine}/{d.series}: {verdict_d} {_when(d.time)}, "
            f"RTO {human_duration(d.rto_seconds)} (objective {human_duration(d.rto_objective_seconds)}), "
            f"RPO {human_duration(d.rpo_seconds)} (objective {human_duration(d.rpo_objective_seconds)})"
        )
    lines += ["", "what is wrong:" if report.problems else "nothing is wrong"]
    lines += [p.line() for p in report.problems]
    return lines
