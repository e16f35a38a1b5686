"""What a drill found, as data: steps with timings, checks, RTO/RPO, verdict.

One :class:`TargetResult` per drilled target (a PostgreSQL database drilled
from its logical backup or through PITR, a Qdrant collection). The same
objects produce the catalog record (exporter), the JSON and the Markdown
report and the command's output, so the three cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

CheckStatus = Literal["passed", "failed", "skipped"]


@dataclass
class Check:
    """One named check and what it found (``detail`` is one line for a human)."""

    name: str
    status: CheckStatus
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class Step:
    """One timed step (restore, a check, cleanup)."""

    name: str
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "detail": self.detail,
        }


@dataclass
class TargetResult:
    """The drill of one target."""

    engine: str  # postgresql | qdrant
    method: str  # logical | pitr | snapshot
    series: str  # database / collection, like the backups' series
    backup_id: str | None = None
    scratch: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: start of the restore until the data was verified; None when it never was
    rto_seconds: float | None = None
    #: now minus the newest point the restore recovered
    rpo_seconds: float | None = None
    recovered_to: datetime | None = None
    steps: list[Step] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.status != "failed" for c in self.checks)

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if c.status == "failed"]

    def check(self, name: str, status: CheckStatus, detail: str) -> Check:
        c = Check(name, status, detail)
        self.checks.append(c)
        return c

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a step; an exception marks it failed (and propagates)."""
        s = Step(name)
        self.steps.append(s)
        t0 = time.monotonic()
        try:
            yield s
        except BaseException as exc:
            s.ok = False
            s.detail = s.detail or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            s.seconds = time.monotonic() - t0

    def message(self) -> str:
        """One line: why the target failed (names the failed checks)."""
        if self.passed:
            return "passed"
        failed = [c for c in self.checks if c.status == "failed"]
        if failed:
            return "; ".join(f"{c.name} failed: {c.detail}" for c in failed)
        return self.error or "failed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "method": self.method,
            "series": self.series,
            "backup_id": self.backup_id,
            "scratch": self.scratch,
            "verdict": "passed" if self.passed else "failed",
            "failed_checks": self.failed_checks,
            "error": self.error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "rto_seconds": _round(self.rto_seconds),
            "rpo_seconds": _round(self.rpo_seconds),
            "recovered_to": self.recovered_to.isoformat() if self.recovered_to else None,
            "steps": [s.as_dict() for s in self.steps],
            "checks": [c.as_dict() for c in self.checks],
        }


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@dataclass
class DrillResult:
    """A whole drill: every target, the cleanup of leftovers, the objectives."""

    id: str
    started_at: datetime
    rto_objective: float
    rpo_objective: float
    finished_at: datetime | None = None
    targets: list[TargetResult] = field(default_factory=list)
    leftovers_removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.targets) and all(t.passed for t in self.targets)

    @property
    def rto_total(self) -> float | None:
        """Sum of the targets' RTOs: restoring everything one after another."""
        values = [t.rto_seconds for t in self.targets if t.rto_seconds is not None]
        return sum(values) if values else None

    def objectives(self) -> list[dict[str, Any]]:
        """RTO/RPO of each target (and the total RTO) against the objectives."""
        out: list[dict[str, Any]] = []
        for t in self.targets:
            label = f"{t.engine} {t.method} {t.series}"
            for what, value, limit in (
                ("RTO", t.rto_seconds, self.rto_objective),
                ("RPO", t.rpo_seconds, self.rpo_objective),
            ):
                out.append(_objective(label, what, value, limit))
        out.append(_objective("total", "RTO", self.rto_total, self.rto_objective))
        return out

    @property
    def objectives_met(self) -> bool:
        return all(o["met"] is not False for o in self.objectives())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verdict": "passed" if self.passed else "failed",
            "objectives_met": self.objectives_met,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "rto_objective_seconds": self.rto_objective,
            "rpo_objective_seconds": self.rpo_objective,
            "rto_total_seconds": _round(self.rto_total),
            "objectives": self.objectives(),
            "leftovers_removed": self.leftovers_removed,
            "notes": self.notes,
            "targets": [t.as_dict() for t in self.targets],
        }


def _objective(label: str, what: str, value: float | None, limit: float) -> dict[str, Any]:
    return {
        "target": label,
        "measure": what,
        "seconds": _round(value),
        "objective_seconds": limit,
        "met": None if value is None else value <= limit,
    }
