"""verify --deep on tables whose column order a restore changes (issue 11 item 2).

pg_restore recreates an inheritance child with the parent's columns first
(``id, city, temp, extra`` for a child dumped as ``id, city, extra, temp``),
and the child of a typed table likewise. The content statistics must not
depend on that order, and a verification that cannot decide must never
mark a good backup failed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from seawall.postgres.logical import server, stats
from seawall.postgres.tools.base import ConnParams
from tests.conftest import PASSWORD, run_seawall
from tests.integration.postgres_logical.helpers import backup_folder, manifests, seawall_env
from tests.support.pgcluster import PgCluster

REORDERED_SQL = """
CREATE TABLE measurements (id int, city text);
CREATE TABLE measurements_2024 (extra text) INHERITS (measurements);
ALTER TABLE measurements ADD COLUMN temp numeric;
INSERT INTO measurements VALUES (0, 'parent row', 1.0);
INSERT INTO measurements_2024 (id, city, extra, temp)
SELECT g, 'city ' || g % 7, 'x' || g, g / 10.0 FROM generate_series(1, 3000) g;
CREATE TYPE reading AS (sensor int, label text);
CREATE TABLE readings OF reading;
CREATE TABLE readings_eu (site text) INHERITS (readings);
ALTER TYPE reading ADD ATTRIBUTE value numeric CASCADE;
INSERT INTO readings SELECT g, 'l' || g, g FROM generate_series(1, 50) g;
INSERT INTO readings_eu (sensor, label, site, value)
SELECT g, 'eu' || g, 'site ' || g % 3, g * 2 FROM generate_series(1, 500) g;
CREATE TABLE plain (a int, b text);
INSERT INTO plain SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
CREATE TABLE par (x int);
CREATE TABLE ch (y int) INHERITS (par);
ALTER TABLE par DROP COLUMN x;
ALTER TABLE par ADD COLUMN x int;
INSERT INTO ch SELECT g, -g FROM generate_series(1, 200) g;
CREATE TABLE pt (a int, b text) PARTITION BY LIST (a);
CREATE TABLE pt1 (b text, a int);
ALTER TABLE pt ATTACH PARTITION pt1 FOR VALUES IN (1);
INSERT INTO pt SELECT 1, 'p' || g FROM generate_series(1, 100) g;
"""
CHILDREN = ("public.ch", "public.measurements_2024", "public.readings_eu")


def _setup(pg: PgCluster, backup_dir: Path) -> dict[str, str]:
    pg.psql("CREATE DATABASE app")
    pg.psql(REORDERED_SQL, "app")
    env = seawall_env(pg, backup_dir, DB_NAME="app")
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    return env


def _rewrite_manifest(backup_dir: Path, change: Any) -> dict[str, Any]:
    [m] = manifests(backup_dir, "app")
    change(m)
    (backup_folder(backup_dir, "app", m["id"]) / "manifest.json").write_text(json.dumps(m))
    return m


def test_reordered_children_verify_deep_ok(pg: PgCluster, backup_dir: Path) -> None:
    env = _setup(pg, backup_dir)
    res = run_seawall(["postgres", "verify", "latest", "--deep", "-d", "app"], env)
    assert res.returncode == 0, res.stderr + res.stdout
    [m] = manifests(backup_dir, "app")
    tables = m["postgres"]["stats"]["tables"]
    assert tables["public.measurements_2024"]["columns"] == ["id", "city", "extra", "temp"]
    assert tables["public.readings_eu"]["columns"] == ["sensor", "label", "site", "value"]
    assert tables["public.ch"]["columns"] == ["y", "x"]
    assert tables["public.pt1"]["columns"] == ["b", "a"]
    verification = m["verification"]
    assert verification["ok"] is True and verification["deep"] is True
    assert verification.get("undecided", []) == []
    assert "undecided" not in res.stdout


def test_reordered_child_with_other_content_still_fails(pg: PgCluster, backup_dir: Path) -> None:
    """The column-order-independent comparison really compares: a recorded
    checksum that does not match the restored child's content fails it."""
    env = _setup(pg, backup_dir)

    def wrong(m: dict[str, Any]) -> None:
        m["postgres"]["stats"]["tables"]["public.measurements_2024"]["checksum"] = "00000000/1"

    _rewrite_manifest(backup_dir, wrong)
    res = run_seawall(["postgres", "verify", "latest", "--deep", "-d", "app"], env)
    assert res.returncode == 3, res.stderr + res.stdout
    assert "public.measurements_2024: content checksum differs" in res.stderr
    [m] = manifests(backup_dir, "app")
    assert m["verification"]["ok"] is False


def test_manifest_without_column_order_is_undecided_not_failed(
    pg: PgCluster, backup_dir: Path
) -> None:
    """A manifest written before the column order was recorded: the reordered
    children cannot be decided; the backup is not marked failed."""
    env = _setup(pg, backup_dir)

    def legacy(m: dict[str, Any]) -> None:
        st = m["postgres"]["stats"]
        st.pop("format", None)
        for t in st["tables"].values():
            t.pop("columns", None)

    _rewrite_manifest(backup_dir, legacy)
    res = run_seawall(["postgres", "verify", "latest", "--deep", "-d", "app"], env)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "undecided" in res.stdout
    [m] = manifests(backup_dir, "app")
    verification = m["verification"]
    assert verification["ok"] is True
    assert sorted(u.split(":")[0] for u in verification["undecided"]) == sorted(CHILDREN)
    assert m["status"] == "success"


def test_sql_checksums_follow_the_recorded_column_order(pg: PgCluster) -> None:
    """The SQL fallback (``hashtextextended`` of each row's text) gives the
    same numbers on a restored copy whose children have another column order."""
    pg.psql("CREATE DATABASE app")
    pg.psql(REORDERED_SQL, "app")
    pg.psql("CREATE DATABASE copy")
    dump = subprocess.run(
        [str(pg.bin_dir / "pg_dump"), "-Fc", "-d", "app"], env=pg.env(), capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    subprocess.run(
        [str(pg.bin_dir / "pg_restore"), "-d", "copy"], input=dump, env=pg.env(), check=True
    )
    params = ConnParams(host=pg.host, port=pg.port, user="postgres", dbname="app",
                        password=PASSWORD)  # fmt: skip
    with server.connect(params, "app") as conn:
        before = stats.tables(conn)
    with server.connect(params, "copy") as conn:
        after = stats.tables(conn, order={k: t.columns for k, t in before.items()})
        restored_columns = stats.tables(conn, checksums=False)
    assert before["public.measurements_2024"].columns == ["id", "city", "extra", "temp"]
    assert restored_columns["public.measurements_2024"].columns == ["id", "city", "temp", "extra"]
    assert {k: t.checksum for k, t in after.items()} == {k: t.checksum for k, t in before.items()}
