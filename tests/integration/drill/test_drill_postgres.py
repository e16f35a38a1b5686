"""`seawall drill` over real logical backups of a real cluster.

Each test backs up a real database with the real CLI, then drills it: a
pass records RTO/RPO that the exporter serves; a damaged backup, a smoke
query whose expectation is not met and an index damaged in the restored
copy each fail the drill with the check named; a drill killed with -9
leaves a scratch database the next drill removes; production is never
written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.app.drill import run_drill
from seawall.catalog.store import Catalog
from seawall.context import Context
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.postgres.tools.base import ConnParams
from seawall.settings import load_settings
from seawall.storage.local import LocalStorage
from tests.conftest import SEAWALL, run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, seawall_env
from tests.support.pgcluster import PgCluster

DRILL_PREFIX = "seawall_drill_"


@pytest.fixture
def items(pg: PgCluster, backup_dir: Path) -> PgCluster:
    """A database `items` (3000 rows, an index, a large object) with one logical backup."""
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    res = run_seawall(["postgres", "backup", "-d", "items"], _env(pg, backup_dir))
    assert res.returncode == 0, res.stderr
    return pg


def _env(pg: PgCluster, backup_dir: Path, **extra: str) -> dict[str, str]:
    return seawall_env(pg, backup_dir, DB_NAME="items", **extra)


def _ctx(pg: PgCluster, backup_dir: Path, **overrides: object) -> Context:
    return Context(
        load_settings(
            backup_dir=backup_dir,
            db_host=pg.host,
            db_port=pg.port,
            db_user="postgres",
            db_password=_password(),
            db_name="items",
            pg_bin_dir=pg.bin_dir,
            **overrides,
        )
    )


def _password() -> str:
    from tests.support.pgcluster import PASSWORD

    return PASSWORD


def _scratch_dbs(pg: PgCluster) -> list[str]:
    out = pg.psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{DRILL_PREFIX}%'")
    return [ln for ln in out.splitlines() if ln]


def _production(pg: PgCluster) -> dict[str, str]:
    """What a drill must not change: databases, row data, write counters of the source."""
    pg.psql("SELECT pg_stat_force_next_flush()", "items")
    return {
        "databases": pg.psql(
            f"SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database "
            f"WHERE datname NOT LIKE '{DRILL_PREFIX}%'"
        ),
        "rows": pg.psql(
            "SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM items t",
            "items",
        ),
        "writes": pg.psql(
            "SELECT tup_inserted || ' ' || tup_updated || ' ' || tup_deleted "
            "FROM pg_stat_database WHERE datname = 'items'"
        ),
    }


def _drill_manifests(backup_dir: Path) -> list[dict[str, object]]:
    root = backup_dir / "drills" / "postgresql" / "items"
    return sorted(
        (json.loads(p.read_text()) for p in root.glob("*/manifest.json")),
        key=lambda m: str(m["id"]),
    )


def test_drill_passes_records_rto_rpo_and_the_exporter_serves_them(
    items: PgCluster, backup_dir: Path, tmp_path: Path
) -> None:
    before = _production(items)
    env = _env(
        items,
        backup_dir,
        DRILL_SMOKE_QUERY="SELECT count(*) FROM items",
        DRILL_SMOKE_MIN="3000",
    )
    res = run_seawall(["drill", "--json", "--report", str(tmp_path / "reports")], env)
    assert res.returncode == 0, res.stderr + res.stdout
    out = json.loads(res.stdout)
    assert out["verdict"] == "passed"
    [target] = out["targets"]
    checks = {c["name"]: c for c in target["checks"]}
    assert checks["restore and statistics"]["status"] == "passed"
    assert checks["amcheck"]["status"] == "passed"
    assert "B-tree indexes" in checks["amcheck"]["detail"]
    assert checks["smoke query"]["status"] == "passed"
    assert checks["smoke query"]["detail"] == "returned 3000"
    assert target["rto_seconds"] > 0 and target["rpo_seconds"] >= 0
    # the report: JSON equal to --json, Markdown with the verdict and every check
    reports = tmp_path / "reports"
    assert (
        json.loads((reports / f"{out['id']}.json").read_text())["targets"][0]["checks"]
        == (target["checks"])
    )
    md = (reports / f"{out['id']}.md").read_text()
    assert "PASSED" in md and "amcheck" in md and "smoke query" in md

    # the record, in the format the exporter reads, and the exporter serves it
    [record] = _drill_manifests(backup_dir)
    assert record["kind"] == "drill" and record["status"] == "success"
    drill = record["drill"]
    assert isinstance(drill, dict)
    assert drill["rto_seconds"] == pytest.approx(target["rto_seconds"], abs=0.01)
    manifests = Catalog(LocalStorage(backup_dir)).scan("postgresql", "logical", "items").manifests
    assert drill["backup_id"] == manifests[0].id
    reg = make_registry(SeawallCollector(backup_dir))
    labels = {"engine": "postgresql", "series": "items"}
    assert reg.get_sample_value("seawall_drill_last_success", labels) == 1
    assert reg.get_sample_value("seawall_drill_rto_seconds", labels) == drill["rto_seconds"]
    assert reg.get_sample_value("seawall_drill_rpo_seconds", labels) == drill["rpo_seconds"]

    assert _scratch_dbs(items) == []
    assert _production(items) == before


def test_smoke_query_expectation_not_met_fails_the_drill(
    items: PgCluster, backup_dir: Path
) -> None:
    env = _env(
        items, backup_dir, DRILL_SMOKE_QUERY="SELECT count(*) FROM items", DRILL_SMOKE_MIN="3001"
    )
    res = run_seawall(["drill"], env)
    assert res.returncode == 3, res.stderr + res.stdout
    assert "smoke query failed: returned 3000, expected at least 3001" in res.stderr
    [record] = _drill_manifests(backup_dir)
    assert record["status"] == "failed"
    assert record["drill"]["failed_checks"] == ["smoke query"]  # type: ignore[index]
    assert record["drill"]["rto_seconds"] is None  # type: ignore[index]
    reg = make_registry(SeawallCollector(backup_dir))
    labels = {"engine": "postgresql", "series": "items"}
    assert reg.get_sample_value("seawall_drill_last_success", labels) == 0
    assert _scratch_dbs(items) == []


def test_corrupted_backup_fails_names_the_check_records_and_cleans_up(
    items: PgCluster, backup_dir: Path
) -> None:
    before = _production(items)
    [m] = Catalog(LocalStorage(backup_dir)).scan("postgresql", "logical", "items").manifests
    dump = backup_dir / "postgresql" / "logical" / "items" / m.id / m.artifacts[0].name
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    res = run_seawall(["drill", "--json"], _env(items, backup_dir))
    assert res.returncode == 3, res.stderr
    out = json.loads(res.stdout)
    assert out["verdict"] == "failed"
    assert out["targets"][0]["failed_checks"] == ["restore and statistics"]
    assert "restore and statistics failed" in res.stderr
    [record] = _drill_manifests(backup_dir)
    assert record["status"] == "failed" and "restore and statistics" in str(record["error"])
    assert _scratch_dbs(items) == []
    assert _production(items) == before


def _corrupt_first_index(pg: PgCluster) -> object:
    """A before_checks hook: damage a page of the `items` primary key in the scratch copy."""

    def hook(params: ConnParams, dbname: str) -> None:
        rel = pg.psql("SELECT pg_relation_filepath('items_pkey')", dbname)
        path = pg.datadir / rel
        with open(path, "r+b") as fh:  # block 1: the first leaf page (block 0 is the metapage)
            fh.seek(8192 + 24)
            fh.write(b"\xff" * 64)  # the line pointers: garbage offsets and lengths

    return hook


def test_index_corrupted_in_the_restored_copy_is_caught_by_amcheck(
    items: PgCluster, backup_dir: Path
) -> None:
    ctx = _ctx(items, backup_dir)
    result = run_drill(ctx, before_checks=_corrupt_first_index(items))  # type: ignore[arg-type]
    assert not result.passed
    [target] = result.targets
    assert target.failed_checks == ["amcheck"]
    amcheck = next(c for c in target.checks if c.name == "amcheck")
    assert "items_pkey" in amcheck.detail, amcheck.detail
    assert _drill_manifests(backup_dir)[0]["status"] == "failed"
    assert _scratch_dbs(items) == []
    # the source's own index is sound
    items.psql("CREATE EXTENSION IF NOT EXISTS amcheck", "items")
    items.psql("SELECT bt_index_check('items_pkey', true)", "items")
    items.psql("DROP EXTENSION amcheck", "items")


def test_kill_9_mid_drill_then_the_next_drill_removes_the_leftovers_and_passes(
    items: PgCluster, backup_dir: Path
) -> None:
    # a bigger table, so that the restore runs long enough to be killed in the middle
    items.psql(
        "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS v "
        "FROM generate_series(1, 300000) g; CREATE INDEX ON big (v)",
        "items",
    )
    env = _env(items, backup_dir)
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    before = _production(items)
    proc = subprocess.Popen(
        [SEAWALL, "drill"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not _scratch_dbs(items):
            assert proc.poll() is None, "the drill ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # pg_restore, a child, may outlive its parent for a moment: its session ends with it
    [left] = _scratch_dbs(items)
    res = run_seawall(["drill", "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["leftovers_removed"] == [f"postgresql database {left}"]
    assert out["targets"][0]["verdict"] == "passed"
    assert _scratch_dbs(items) == []
    assert _production(items) == before


def test_refuses_a_scratch_name_that_is_not_a_drill_leftover(
    items: PgCluster, backup_dir: Path
) -> None:
    ctx = _ctx(items, backup_dir)
    drill_id = "20991231T235959Z-abcd"  # a drill id from the future: no earlier drill's leftover
    items.psql("CREATE DATABASE seawall_drill_20991231t235959z_abcd")
    items.psql("CREATE TABLE precious (x int)", "seawall_drill_20991231t235959z_abcd")
    result = run_drill(ctx, drill_id=drill_id)
    assert not result.passed
    [target] = result.targets
    assert "is not a leftover of an earlier drill" in target.message()
    assert _scratch_dbs(items) == ["seawall_drill_20991231t235959z_abcd"]
    assert items.psql("SELECT count(*) FROM precious", "seawall_drill_20991231t235959z_abcd") == "0"


def test_objectives_missed_are_reported_not_a_failure(
    items: PgCluster, backup_dir: Path, tmp_path: Path
) -> None:
    env = _env(items, backup_dir, DRILL_RPO_OBJECTIVE="0s", DRILL_RTO_OBJECTIVE="1h")
    res = run_seawall(["drill", "--report", str(tmp_path)], env)
    assert res.returncode == 0, res.stderr
    assert "objective missed: postgresql logical items RPO" in res.stdout
    [report] = tmp_path.glob("*.json")
    data = json.loads(report.read_text())
    assert data["verdict"] == "passed" and data["objectives_met"] is False
    met = {(o["target"], o["measure"]): o["met"] for o in data["objectives"]}
    assert met == {
        ("postgresql logical items", "RTO"): True,
        ("postgresql logical items", "RPO"): False,
        ("total", "RTO"): True,
    }
    assert "(MISSED)" in next(tmp_path.glob("*.md")).read_text()


def test_a_separate_scratch_server_takes_the_restore(
    items: PgCluster, backup_dir: Path, pg_factory: Callable[..., PgCluster]
) -> None:
    scratch = pg_factory()
    seen: list[tuple[int, list[str], list[str]]] = []

    def where(params: ConnParams, dbname: str) -> None:
        seen.append((params.port, _scratch_dbs(scratch), _scratch_dbs(items)))

    before = _production(items)
    ctx = _ctx(items, backup_dir, drill_db_host=scratch.host, drill_db_port=scratch.port)
    result = run_drill(ctx, before_checks=where)  # type: ignore[arg-type]
    assert result.passed, [t.message() for t in result.targets]
    [(port, on_scratch, on_source)] = seen
    assert port == scratch.port and on_scratch == [result.targets[0].scratch] and on_source == []
    assert _scratch_dbs(scratch) == []
    assert _production(items) == before
