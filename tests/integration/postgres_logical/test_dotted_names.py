"""Content statistics of names with dots and quotes (stats format 3).

``"a.b".c`` (schema ``a.b``) and ``a."b.c"`` (table ``b.c``) were both keyed
``a.b.c``: the manifest recorded one of them, and verify --deep compared
whichever table the restored copy listed under that key, so a restore that
lost one of two tables with the same rows passed. Here for real: a backup by
the CLI, a restore by pg_restore that leaves one table out (its TOC entries
removed from the list), and verify's own comparison (deepstats.measure with
the stream checksums, then stats.compare). Manifests written before format
3 stay readable: their keys are mapped to the new ones, and a pair that
shared one old key is undecided, never failed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from seawall.catalog.models import ContentStats
from seawall.context import Context
from seawall.postgres.logical import deepstats, server, stats
from seawall.postgres.logical.relkey import legacy_key
from seawall.postgres.tools.base import ConnParams
from seawall.settings import load_settings
from tests.conftest import PASSWORD, run_seawall
from tests.integration.postgres_logical.helpers import backup_folder, manifests, seawall_env
from tests.support.pgcluster import PgCluster

DOTTED_SQL = """
CREATE SCHEMA "a.b";
CREATE SCHEMA a;
CREATE TABLE "a.b".c (id int, v text);
CREATE TABLE a."b.c" (id int, v text);
INSERT INTO "a.b".c SELECT g, md5(g::text) FROM generate_series(1, 300) g;
INSERT INTO a."b.c" SELECT g, md5(g::text) FROM generate_series(1, 300) g;
CREATE SEQUENCE "a.b".s;
CREATE SEQUENCE a."b.s";
SELECT setval('"a.b".s', 40), setval('a."b.s"', 40);
CREATE TABLE public."q""t" (x int);
INSERT INTO public."q""t" SELECT generate_series(1, 7);
"""
PAIR = ('"a.b".c', 'a."b.c"')
SEQUENCES = ('"a.b".s', 'a."b.s"')
QUOTED = 'public."q""t"'


@pytest.fixture
def app(pg: PgCluster, backup_dir: Path) -> dict[str, str]:
    pg.psql("CREATE DATABASE app")
    pg.psql(DOTTED_SQL, "app")
    env = seawall_env(pg, backup_dir, DB_NAME="app")
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    return env


def _params(pg: PgCluster) -> ConnParams:
    return ConnParams(host=pg.host, port=pg.port, user="postgres", dbname="app", password=PASSWORD)


def _restore_without(pg: PgCluster, lst: Path, target: str, schema: str, table: str) -> None:
    """pg_restore of a dump of ``app`` into ``target`` that loses one table: its
    TOC entries (TABLE, TABLE DATA, the two of them) are left out of the list."""
    oid = pg.psql(f"SELECT '{schema}.{table}'::regclass::oid", "app")
    dump = subprocess.run(
        [str(pg.bin_dir / "pg_dump"), "-Fc", "-d", "app"], env=pg.env(), capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    listing = subprocess.run(
        [str(pg.bin_dir / "pg_restore"), "-l"], input=dump, env=pg.env(), capture_output=True,
        check=True,
    ).stdout.decode()  # fmt: skip
    kept = [ln for ln in listing.splitlines() if ln.startswith(";") or ln.split()[2] != oid]
    assert len(kept) == len(listing.splitlines()) - 2  # TABLE and TABLE DATA
    lst.write_text("\n".join(kept) + "\n")
    pg.psql(f"CREATE DATABASE {target}")
    subprocess.run(
        [str(pg.bin_dir / "pg_restore"), "-d", target, "-L", str(lst)], input=dump,
        env=pg.env(), check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.parametrize("checksums", [True, False], ids=["stream-checksums", "counts-only"])
def test_a_restore_that_loses_one_of_two_dotted_tables_is_noticed(
    pg: PgCluster, backup_dir: Path, app: dict[str, str], tmp_path: Path, checksums: bool
) -> None:
    """With CONTENT_CHECKSUMS=false (row counts only) the loss passed before;
    with stream checksums it failed by accident, as "a.b.c: content checksum
    differs" (both tables' COPY data had gone into one checksum)."""
    if not checksums:
        res = run_seawall(["postgres", "backup"], app | {"CONTENT_CHECKSUMS": "false"})
        assert res.returncode == 0, res.stderr
    m = manifests(backup_dir, "app")[-1]
    assert (m["postgres"]["stats"]["checksum_method"] is not None) == checksums
    expected = ContentStats.model_validate(m["postgres"]["stats"])
    _restore_without(pg, tmp_path / "restore.list", "lost", '"a.b"', "c")
    ctx = Context(
        load_settings(backup_dir=backup_dir, db_host=pg.host, db_port=pg.port,
                      db_user="postgres", db_password=PASSWORD, pg_bin_dir=pg.bin_dir)
    )  # fmt: skip
    params = _params(pg)
    with server.connect(params, "lost") as conn:
        major = server.server_version_num(conn) // 10000
        measured = deepstats.measure(
            ctx, params, conn, "lost", major, expected, m["tool_versions"]["pg_dump"]
        )
    assert measured.undecided == []
    problems = measured.problems + stats.compare(
        measured.expected, measured.actual, measured.descending
    )
    assert problems == ['table "a.b".c missing after restore']
    assert sorted(measured.actual.tables) == ['a."b.c"', QUOTED]


def test_backup_records_both_and_verify_deep_compares_them(
    backup_dir: Path, app: dict[str, str]
) -> None:
    [m] = manifests(backup_dir, "app")
    st = m["postgres"]["stats"]
    assert st["format"] == 3
    assert sorted(st["tables"]) == sorted([*PAIR, QUOTED])
    assert all(st["tables"][k]["rows"] == 300 and st["tables"][k]["checksum"] for k in PAIR)
    assert sorted(st["sequences"]) == sorted(SEQUENCES)
    res = run_seawall(["postgres", "verify", "latest", "--deep", "-d", "app"], app)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "statistics match: 3 tables" in res.stdout
    [m] = manifests(backup_dir, "app")
    assert m["verification"]["ok"] is True and not m["verification"].get("undecided")


def _as_format_2(backup_dir: Path, change: Any = None) -> None:
    """The manifest as seawall wrote it before format 3: unquoted keys, one of
    the pair lost under their common key (the later one in catalog order)."""
    [m] = manifests(backup_dir, "app")
    st = m["postgres"]["stats"]
    st["format"] = 2
    for field in ("tables", "sequences"):
        st[field] = {legacy_key(k): v for k, v in sorted(st[field].items())}
    assert sorted(st["tables"]) == ["a.b.c", 'public.q"t']
    if change is not None:
        change(st)
    (backup_folder(backup_dir, "app", m["id"]) / "manifest.json").write_text(json.dumps(m))


def test_manifest_before_format_3_still_verifies_and_the_pair_is_undecided(
    backup_dir: Path, app: dict[str, str]
) -> None:
    _as_format_2(backup_dir)
    res = run_seawall(["postgres", "verify", "latest", "--deep", "-d", "app"], app)
    assert res.returncode == 0, res.stderr + res.stdout
    [m] = manifests(backup_dir, "app")
    undecided = m["verification"]["undecided"]
    assert len(undecided) == 2, undecided
    assert undecided[0].startswith('tables "a.b".c, a."b.c": not compared'), undecided
    assert undecided[1].startswith('sequences "a.b".s, a."b.s": not compared'), undecided
    assert m["verification"]["ok"] is True and m["status"] == "success"


def test_manifest_before_format_3_is_still_compared_under_its_old_keys(
    backup_dir: Path, app: dict[str, str]
) -> None:
    """A name with a quote had another key before (``public.q"t``): mapped,
    compared, and a wrong checksum under it still fails verify."""

    def wrong(st: dict[str, Any]) -> None:
        st["tables"]['public.q"t']["checksum"] = "00000000/1"

    _as_format_2(backup_dir, wrong)
    res = run_seawall(["postgres", "verify", "latest", "--deep", "-d", "app"], app)
    assert res.returncode == 3, res.stderr + res.stdout
    assert f"table {QUOTED}: content checksum differs" in res.stderr
