"""``seawall status`` over a real repository: a real cluster archiving WAL through
seawall, real logical and base backups, drill records in the documented
format (docs/exporter.md, "DR drill records"). Healthy: exit 0. A stale
backup, a WAL gap, a failed drill, RTO over objective, a failed run: exit 11,
each problem named with its fix (issue 15)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from seawall.catalog.naming import new_backup_id
from tests.integration.wal.helpers import Archived, make_archived
from tests.support.pgcluster import PgCluster


def write_drill(
    backup_dir: Path,
    series: str,
    *,
    passed: bool,
    rto: float,
    rpo: float,
    error: str | None = None,
    at: datetime | None = None,
) -> str:
    """A drill record exactly as docs/exporter.md describes it."""
    finished = at or datetime.now(UTC)
    drill_id = new_backup_id(finished)
    record = backup_dir / "drills" / "postgresql" / series / drill_id / "manifest.json"
    record.parent.mkdir(parents=True)
    record.write_text(
        json.dumps(
            {
                "format_version": 1,
                "id": drill_id,
                "engine": "postgresql",
                "kind": "drill",
                "series": series,
                "target": f"seawall_drill_{series}",
                "status": "success" if passed else "failed",
                "started_at": (finished - timedelta(seconds=rto)).isoformat(),
                "finished_at": finished.isoformat(),
                "error": error,
                "drill": {
                    "rto_seconds": rto,
                    "rpo_seconds": rpo,
                    "backup_id": "20261124T020000Z-1a2b",
                    "rto_objective_seconds": 3600,
                    "rpo_objective_seconds": 86400,
                },
            }
        )
    )
    return drill_id


def _status(arch: Archived, **env: str) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    text = arch.seawall("status", **env)
    js = arch.seawall("status", "--json", **env)
    assert js.returncode == text.returncode, (text.stdout, js.stdout)
    return text, json.loads(js.stdout)


def _errors(data: dict) -> list[str]:  # type: ignore[type-arg]
    return [f"{p['subject']}: {p['message']}" for p in data["problems"] if p["severity"] == "error"]


def test_status_healthy_then_each_problem_named(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE DATABASE app")
    arch.pg.psql("CREATE TABLE t AS SELECT g AS i FROM generate_series(1, 1000) g", "app")
    env = {"DATABASES": "app"}
    assert arch.seawall("postgres", "backup", **env).returncode == 0
    arch.basebackup()
    segments = []
    for i in range(3):
        arch.pg.psql(f"INSERT INTO t VALUES ({i})", "app")  # a switch needs WAL written
        segments.append(arch.switch_and_wait())

    # no drill yet: a warning, not a failure (no drill objective configured)
    res, data = _status(arch, **env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("seawall status: SAFE"), res.stdout
    assert "WARNING drills: no drill recorded" in res.stdout
    # ... unless STATUS_DRILL_MAX_AGE says drills are expected
    strict, strict_data = _status(arch, STATUS_DRILL_MAX_AGE="100d", **env)
    assert strict.returncode == 11 and _errors(strict_data) == [
        "drills: no drill recorded: nobody has proven a restore works"
    ], strict.stdout

    write_drill(backup_dir, "app", passed=True, rto=42.0, rpo=600.0)
    res, data = _status(arch, STATUS_DRILL_MAX_AGE="100d", **env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert data["safe"] is True and _errors(data) == []
    names = {(s["engine"], s["kind"], s["series"]) for s in data["series"]}
    assert names == {("postgresql", "logical", "app"), ("postgresql", "base", "main")}
    assert all(s["stale"] is False and s["newest"] for s in data["series"])
    (pitr,) = data["pitr"]
    assert pitr["cluster"] == "main" and pitr["gaps"] == []
    assert pitr["earliest"] and pitr["latest"] and pitr["wal_lag_seconds"] < 600
    assert pitr["newest_segment"] >= segments[-1]
    assert data["drills"][0]["passed"] is True and data["drills"][0]["rto_seconds"] == 42.0
    assert data["storage"]["backup_bytes"] > 0 and data["storage"]["wal_bytes"] > 0
    assert "postgresql/logical/app:" in res.stdout and "cluster main: window" in res.stdout
    assert "nothing is wrong" in res.stdout

    # 1. a stale backup: the logical backup is older than its (short) schedule
    time.sleep(2.5)
    stale_env = {**env, "STATUS_BACKUP_INTERVAL": "1s", "STATUS_GRACE": "1s"}
    res, data = _status(arch, **stale_env)
    assert res.returncode == 11, res.stdout
    errors = _errors(data)
    assert len(errors) == 1 and errors[0].startswith("postgresql/logical/app: stale:"), errors
    assert "NOT SAFE" in res.stdout and "seawall postgres backup --database app" in res.stdout
    assert "not safe: 1 problem(s) (postgresql/logical/app)" in res.stderr

    # 2. a WAL gap: a segment deleted from the middle of the archive
    victim = segments[1]
    (path,) = (backup_dir / "postgresql" / "wal").rglob(f"{victim}-*")
    path.unlink()
    res, data = _status(arch, **env)
    assert res.returncode == 11, res.stdout
    assert _errors(data) == [
        f"PITR cluster main: WAL gap on timeline 1: 1 segment(s) missing ({victim}..{victim}); "
        "recovery cannot cross it"
    ], res.stdout
    assert "seawall postgres basebackup" in res.stdout and data["pitr"][0]["gaps"]

    # 3. a failed drill, newer than the passing one; and one over its RTO objective
    write_drill(
        backup_dir,
        "app",
        passed=False,
        rto=30.0,
        rpo=60.0,
        error="amcheck: index t_pkey is corrupt",
    )
    write_drill(backup_dir, "billing", passed=True, rto=7200.0, rpo=60.0)
    # 4. a run that failed: a database backed up once, then dropped (a missing
    #    target that never had a backup is a rejected run, not a series problem)
    arch.pg.psql("CREATE DATABASE gone")
    assert arch.seawall("postgres", "backup", "--database", "gone").returncode == 0
    arch.pg.psql("DROP DATABASE gone")
    assert arch.seawall("postgres", "backup", "--database", "gone").returncode != 0

    # 5. the newest backup fails verification (a byte flipped in its dump)
    (dump,) = (backup_dir / "postgresql" / "logical" / "app").glob("*/dump*")
    raw = bytearray(dump.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    dump.write_bytes(bytes(raw))
    verify = arch.seawall("postgres", "verify", "latest", "--database", "app")
    assert verify.returncode == 3, verify.stderr

    # everything at once, plus a WAL archive lag over its (short) limit
    res, data = _status(arch, STATUS_WAL_MAX_LAG="1s", **stale_env)
    assert res.returncode == 11
    errors = _errors(data)
    expected = [
        "postgresql/logical/app: stale:",
        "postgresql/logical/app: the newest backup",
        "PITR cluster main: WAL archive lag: the newest archived segment",
        "PITR cluster main: WAL gap on timeline 1",
        "drill postgresql/app: the last drill",
        "drill postgresql/billing: RTO 2.0h is over its objective 60m",
        "postgresql/logical/gone: the last run",
    ]
    for start in expected:
        assert any(e.startswith(start) for e in errors), (start, errors)
    # gone's one success may or may not be older than the 2 s schedule by now
    others = [e for e in errors if not e.startswith("postgresql/logical/gone: stale:")]
    assert len(others) == len(expected), errors
    assert "FAILED: amcheck: index t_pkey is corrupt" in res.stdout
    assert "FAILED verification" in res.stdout and "seawall check" in res.stdout
    assert all(p["fix"] for p in data["problems"])
