"""Issue 12 through the CLI against a real PostgreSQL cluster: a pinned backup
survives prune and a same-day second backup; forget removes exactly what it
lists; a mistyped DB_NAME creates no series that pages; `info --json` shows
the right numbers; wal-check's window right after a base backup."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seawall.exporter.collector import SeawallCollector, make_registry
from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, seawall_env
from tests.integration.wal.helpers import make_archived
from tests.support.pgcluster import PgCluster

APP = {"engine": "postgresql", "kind": "logical", "series": "app"}


def ids(backup_dir: Path, db: str = "app") -> set[str]:
    return {p.parent.name for p in (backup_dir / "postgresql/logical" / db).glob("*/manifest.json")}


def ok(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def backup(env: dict[str, str], **extra: str) -> str:
    res = ok(run_seawall(["postgres", "backup", "-d", "app", "--json"], {**env, **extra}))
    made: dict[str, Any] = json.loads(res.stdout)[0]
    return str(made["id"])


def test_pin_prune_forget_and_a_mistyped_database(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql(SMALL_SQL, "app")
    # one backup a day is what the policy keeps: a second one the same day
    # replaces the first in its daily bucket
    env = seawall_env(
        pg, backup_dir, RETENTION_DAYS="1", RETENTION_WEEKS="0", RETENTION_MONTHS="0",
        VERIFY_BACKUP="false",
    )  # fmt: skip
    nightly = backup(env)
    res = ok(run_seawall(["pin", nightly, "--note", "before the v2 migration"], env))
    assert f"postgresql/logical/app {nightly}: pinned: before the v2 migration" in res.stdout
    pinned = json.loads(
        (backup_dir / "postgresql/logical/app" / nightly / "manifest.json").read_text()
    )
    assert pinned["pin"]["note"] == "before the v2 migration" and pinned["format_version"] == 2

    premigration = backup(env, PRUNE_AFTER_BACKUP="true")  # same day, retention right after
    assert ids(backup_dir) == {nightly, premigration}
    third = backup(env, PRUNE_AFTER_BACKUP="true")
    assert ids(backup_dir) == {nightly, third}  # the unpinned same-day one went

    listing = ok(run_seawall(["postgres", "list"], env)).stdout
    [row] = [line for line in listing.splitlines() if line.startswith(nightly)]
    assert row.rstrip().endswith("pinned: before the v2 migration")
    rows = json.loads(ok(run_seawall(["postgres", "list", "--json"], env)).stdout)
    assert {r["id"]: r["pin"] is not None for r in rows} == {nightly: True, third: False}
    dry = ok(run_seawall(["prune", "--dry-run"], env)).stdout
    [line] = [line for line in dry.splitlines() if nightly in line]
    assert line.startswith("keep") and "pinned" in line and "before the v2 migration" in line
    reg = make_registry(SeawallCollector(backup_dir))
    assert reg.get_sample_value("seawall_backups_pinned", APP) == 1

    # unpinned, the policy drops it
    ok(run_seawall(["unpin", nightly], env))
    plan = json.loads(ok(run_seawall(["prune", "--dry-run", "--json"], env)).stdout)
    [action] = [a for a in plan["actions"] if a["name"] == nightly]
    assert action["action"] == "drop" and action["pin"] is None
    assert (
        make_registry(SeawallCollector(backup_dir)).get_sample_value("seawall_backups_pinned", APP)
        == 0
    )

    # forget: a dry run by default, then exactly what it listed
    before = ids(backup_dir)
    dry = json.loads(ok(run_seawall(["forget", nightly, "--json"], env)).stdout)
    assert dry["dry_run"] and [b["id"] for b in dry["backups"]] == [nightly]
    assert ids(backup_dir) == before
    done = json.loads(ok(run_seawall(["forget", nightly, "--execute", "--json"], env)).stdout)
    assert done["deleted"] == 1 and [b["id"] for b in done["backups"]] == [nightly]
    assert ids(backup_dir) == before - {nightly}
    assert not (backup_dir / "postgresql/logical/app" / nightly).exists()

    # the newest good backup of a live series needs --force, alone or with its series
    for args in (["forget", third, "--execute"], ["forget", "--series", "app", "--execute"]):
        res = run_seawall(args, env)
        assert res.returncode == 9 and "--force" in res.stderr, res.stderr
        assert ids(backup_dir) == {third}
    # the dry run lists it and exits 9 too, so a script learns it before --execute
    res = run_seawall(["forget", "--series", "app"], env)
    assert res.returncode == 9
    listed = res.stdout
    assert f"would forget postgresql/logical/app {third}" in listed and "needs --force" in listed
    ok(run_seawall(["forget", "--series", "app", "--execute", "--force"], env))
    assert not (backup_dir / "postgresql/logical/app").exists()

    # DB_NAME=nosuch: exit 5, no new series (nothing pages), one rejected run
    res = run_seawall(["postgres", "backup"], {**env, "DB_NAME": "nosuch", "DATABASES": ""})
    assert res.returncode == 5 and 'database "nosuch" does not exist' in res.stderr, res.stderr
    assert not (backup_dir / "postgresql/logical/nosuch").exists()
    reg = make_registry(SeawallCollector(backup_dir))
    assert reg.get_sample_value("seawall_rejected_runs") == 1
    assert (
        reg.get_sample_value("postgres_backup_status", {"database": "nosuch", "type": "logical"})
        is None
    )
    info = json.loads(ok(run_seawall(["info", "--json"], env)).stdout)
    [rejected] = info["rejected_runs"]
    assert (
        rejected["series"] == "postgresql/logical/nosuch" and "does not exist" in rejected["error"]
    )
    dry = ok(run_seawall(["forget", "--series", "nosuch"], env)).stdout
    assert f"would forget rejected run postgresql/logical/nosuch {rejected['id']}" in dry
    ok(run_seawall(["forget", "--series", "nosuch", "--execute"], env))
    assert (
        make_registry(SeawallCollector(backup_dir)).get_sample_value("seawall_rejected_runs") == 0
    )
    assert json.loads(ok(run_seawall(["info", "--json"], env)).stdout)["rejected_runs"] == []

    # a database that had good backups and then vanished is a real failure of its series
    pg.psql("CREATE DATABASE gone")
    ok(run_seawall(["postgres", "backup", "-d", "gone"], env))
    pg.psql("DROP DATABASE gone")
    assert run_seawall(["postgres", "backup", "-d", "gone"], env).returncode == 5
    statuses = sorted(
        json.loads(p.read_text())["status"]
        for p in (backup_dir / "postgresql/logical/gone").glob("*/manifest.json")
    )
    assert statuses == ["failed", "success"]


def test_base_backup_wal_check_window_and_info(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE TABLE t (i int)")
    made = arch.basebackup()
    # right after the base backup: the window starts at its end and does not end before it
    report = json.loads(ok(arch.seawall("postgres", "wal-check", "--json")).stdout)
    window = report["recoverable_window"]
    assert window["earliest"] is not None and window["latest"] >= window["earliest"], window
    text = ok(arch.seawall("postgres", "wal-check")).stdout
    assert "recoverable window:" in text

    arch.pg.psql("INSERT INTO t SELECT generate_series(1, 1000)")
    arch.switch_and_wait()
    ok(arch.seawall("pin", "latest", "--series", "main", "--kind", "base", "--note", "keep"))
    info = json.loads(ok(arch.seawall("info", "--json")).stdout)

    # numbers against the volume itself
    manifest = json.loads(
        (backup_dir / "postgresql/base/main" / str(made["id"]) / "manifest.json").read_text()
    )
    [base] = [s for s in info["series"] if s["kind"] == "base"]
    assert base["series"] == "main" and base["successful"] == 1 and base["pinned"] == 1
    [row] = base["backups"]
    assert row["id"] == made["id"] and row["pinned"] and row["pin"]["note"] == "keep"
    assert row["stored_bytes"] == sum(a["stored_size"] for a in manifest["artifacts"]) > 0
    assert row["raw_bytes"] == sum(a["raw_size"] for a in manifest["artifacts"])
    assert "pinned" in row["retention"]["reasons"][0] or "pinned" in row["retention"]["reasons"]
    wal_files = [
        p for p in (backup_dir / "postgresql/wal/main").rglob("*") if p.is_file()
        and p.name != "archive.json"
    ]  # fmt: skip
    segments = [p for p in wal_files if len(p.name.split("-")[0]) == 24]
    [wal] = info["wal"]
    assert wal["cluster"] == "main" and wal["files"] == len(wal_files)
    assert wal["bytes"] == sum(p.stat().st_size for p in wal_files)
    [tl] = wal["timelines"]
    names = sorted(p.name.split("-")[0] for p in segments)
    assert (tl["timeline"], tl["first"], tl["last"]) == (1, names[0], names[-1])
    assert tl["segments"] == len(segments) and tl["missing"] == 0
    # the same window wal-check prints, never ending before it starts
    check = json.loads(ok(arch.seawall("postgres", "wal-check", "--json")).stdout)
    win = wal["recoverable_window"]
    assert (win["earliest"], win["latest"]) == (
        check["recoverable_window"]["earliest"],
        check["recoverable_window"]["latest"],
    )
    assert win["seconds"] >= 0
    repo = info["repository"]
    assert repo["wal_bytes"] == wal["bytes"]
    assert repo["backups_bytes"] == sum(s["stored_bytes"] for s in info["series"])
    assert repo["volume"]["size_bytes"] > 0
    text = ok(arch.seawall("info")).stdout
    assert f"WAL archive main: {len(wal_files)} files" in text and "pinned: keep" in text
