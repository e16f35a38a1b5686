"""Checksums read off the pg_dump stream (``dumpscan``).

Real pg_dump 15 and 18 archives of awkward data, fed in random slices:
every table gets a checksum, it does not depend on how the stream was
sliced, a re-dump of a restored copy gives the same checksums (that is what
``verify --deep`` compares), and one changed value changes one checksum.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.postgres.logical.dumpscan import DumpScanner, ScanError
from seawall.postgres.logical.relkey import relation_key
from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PgCluster

# Rows whose chunk length has a newline byte (0x0a) in its length field
# (10 and 2570 bytes with the newline), a table of one-character rows, an
# empty table, text full of COPY escapes, names that need quoting, a
# partitioned table and large objects (a BLOBS block of binary chunks).
AWKWARD_SQL = r"""
CREATE SCHEMA "odd schema";
CREATE TABLE "odd schema"."Tab ""q"" x" (v text);
INSERT INTO "odd schema"."Tab ""q"" x" SELECT repeat('x', 9) FROM generate_series(1, 300);
INSERT INTO "odd schema"."Tab ""q"" x" SELECT repeat('y', 2569) FROM generate_series(1, 40);
CREATE TABLE public.tiny (c char(1));
INSERT INTO public.tiny SELECT 'a' FROM generate_series(1, 1000);
CREATE TABLE public.empty (id int);
CREATE TABLE public.escapes (t text, b bytea, f float8, j jsonb);
INSERT INTO public.escapes
SELECT E'line\nbreak\ttab\\back\rcr ' || g, decode(repeat('00', g % 7), 'hex'),
       g / 3.0, jsonb_build_object('k', E'\n', 'u', 'ü€')
FROM generate_series(1, 5000) g;
INSERT INTO public.escapes VALUES (NULL, NULL, 'NaN', NULL), ('\.', '\x', '-Infinity', 'null');
CREATE TABLE public.parted (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE public.parted_a PARTITION OF public.parted FOR VALUES FROM (0) TO (1000);
CREATE TABLE public.parted_b PARTITION OF public.parted FOR VALUES FROM (1000) TO (5000);
INSERT INTO public.parted SELECT g, md5(g::text) FROM generate_series(0, 4999) g;
SELECT lo_from_bytea(0, decode(repeat('000000000a0000000000', 4000), 'hex'));
SELECT lo_from_bytea(0, '');
"""


def _pg_dump(cluster: PgCluster, db: str, *extra: str) -> bytes:
    env = {**os.environ, **cluster.env(), "PGDATABASE": db}
    return subprocess.run(
        [str(Path(cluster.bin_dir) / "pg_dump"), "-Fc", "-Z0", *extra],
        env=env,
        check=True,
        capture_output=True,
    ).stdout


def _scan(data: bytes, seed: int) -> DumpScanner:
    rnd = random.Random(seed)
    scanner = DumpScanner()
    pos = 0
    while pos < len(data):
        n = rnd.choice([1, 2, 3, 5, 6, 7, 11, 64, 4096, 65536, 1 << 20])
        scanner.feed(data[pos : pos + n])
        pos += n
    return scanner


def _tables(cluster: PgCluster, db: str) -> set[str]:
    """Stats keys of the tables (relkey: a name with a quote or a dot is quoted)."""
    out = cluster.psql(
        "SELECT n.nspname || E'\\t' || c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
        db,
    )
    return {relation_key(*line.split("\t")) for line in out.splitlines()}


@pytest.mark.parametrize("version", [15, 18])
def test_stream_checksums(version: int, pg_factory: Callable[..., PgCluster]) -> None:
    cluster = pg_factory(version=version)
    cluster.psql("CREATE DATABASE src")
    cluster.psql(AWKWARD_SQL, "src")
    archive = _pg_dump(cluster, "src")

    reference = _scan(archive, 0).checksums()
    assert set(reference) == _tables(cluster, "src")
    assert len(set(reference.values())) == len(reference)
    for seed in range(1, 25):
        assert _scan(archive, seed).checksums() == reference, f"slicing seed {seed}"

    # A restored copy, re-dumped data-only, reads the same.
    cluster.psql("CREATE DATABASE copy")
    restore = subprocess.run(
        [str(Path(cluster.bin_dir) / "pg_restore"), "-d", "copy", "--no-owner"],
        input=archive,
        env={**os.environ, **cluster.env()},
        capture_output=True,
    )
    assert restore.returncode == 0, restore.stderr
    assert _scan(_pg_dump(cluster, "copy", "--data-only"), 7).checksums() == reference

    # One changed value in one table changes that table's checksum only.
    cluster.psql("UPDATE public.tiny SET c = 'b' WHERE ctid = '(0,5)'", "copy")
    changed = _scan(_pg_dump(cluster, "copy", "--data-only"), 8).checksums()
    assert changed["public.tiny"] != reference["public.tiny"]
    assert {k: v for k, v in changed.items() if k != "public.tiny"} == {
        k: v for k, v in reference.items() if k != "public.tiny"
    }


def test_streams_it_cannot_read_fail_cleanly(pg: PgCluster) -> None:
    pg.psql("CREATE DATABASE src")
    pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g", "src")
    good = _pg_dump(pg, "src")
    cases = {
        "not a pg_dump": b"-- plain SQL\n" * 100,
        "compressed inside pg_dump": _pg_dump(pg, "src", "-Z1"),
        "truncated in the data": good[: len(good) - 7],
        "truncated in the table of contents": good[:200],
    }
    for label, data in cases.items():
        scanner = _scan(data, 1)
        with pytest.raises(ScanError):
            scanner.checksums()
        assert scanner.failed, label
    assert set(_scan(good, 1).checksums()) == {"public.t"}


def test_backup_falls_back_to_sql_statistics(pg: PgCluster, backup_dir: Path) -> None:
    """A pg_dump whose stream the scanner cannot read (here: the real pg_dump
    told to compress inside the archive) still gets checksums, taken with SQL
    in the dump's snapshot, and deep verification passes."""
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 4000) g", "app")
    bindir = Path(
        subprocess.run(
            ["mktemp", "-d", "/tmp/seawall-bin-XXXX"], capture_output=True, text=True
        ).stdout.strip()
    )
    try:
        real = Path(pg.bin_dir)
        for name in ("pg_dumpall", "pg_restore", "psql"):
            (bindir / name).symlink_to(real / name)
        wrapper = bindir / "pg_dump"
        wrapper.write_text(f'#!/bin/sh\nexec {real / "pg_dump"} "$@" --compress=1\n')
        wrapper.chmod(0o755)
        env = seawall_env(pg, backup_dir, DB_NAME="app", PG_BIN_DIR=str(bindir))
        res = run_seawall(["postgres", "backup"], env)
        assert res.returncode == 0, res.stderr
        assert "checksums from the dump stream unavailable" in res.stderr
        [m] = manifests(backup_dir, "app")
        stats = m["postgres"]["stats"]
        assert stats.get("checksum_method") is None  # the SQL method
        assert stats["tables"]["public.t"]["rows"] == 4000
        assert stats["tables"]["public.t"]["checksum"] is not None
        res = run_seawall(["postgres", "verify", "latest", "--deep", "--database", "app"], env)
        assert res.returncode == 0, res.stderr
    finally:
        subprocess.run(["rm", "-rf", str(bindir)], check=False)


def test_manifest_records_stream_statistics(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 2500) g", "app")
    res = run_seawall(["postgres", "backup"], seawall_env(pg, backup_dir, DB_NAME="app"))
    assert res.returncode == 0, res.stderr
    [m] = manifests(backup_dir, "app")
    stats = m["postgres"]["stats"]
    assert stats["checksum_method"] == "pg_dump-copy-crc32", json.dumps(stats)
    assert stats["tables"]["public.t"]["rows"] == 2500
    assert re.fullmatch(r"[0-9a-f]{8}/[0-9]+", stats["tables"]["public.t"]["checksum"])


def test_non_utf8_database_names_get_checksums(pg: PgCluster, backup_dir: Path) -> None:
    """Names in the archive are in the database's encoding (here LATIN1);
    the scanner must key them exactly as the SQL side does, or the table's
    checksum would silently be missing from the manifest."""
    pg.psql("CREATE DATABASE lat ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    pg.psql(
        "SET client_encoding = 'UTF8';"
        "CREATE TABLE \"café\" AS SELECT g, 'crème ' || g AS v FROM generate_series(1, 500) g",
        "lat",
    )
    env = seawall_env(pg, backup_dir, DB_NAME="lat")
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    assert "no checksum from the dump stream" not in res.stderr
    [m] = manifests(backup_dir, "lat")
    stats = m["postgres"]["stats"]
    assert stats["checksum_method"] == "pg_dump-copy-crc32"
    assert stats["tables"]["public.café"]["rows"] == 500
    assert stats["tables"]["public.café"]["checksum"]
    res = run_seawall(["postgres", "verify", "latest", "--deep", "--database", "lat"], env)
    assert res.returncode == 0, res.stderr


def test_another_pg_dump_version_skips_the_checksums(pg: PgCluster, backup_dir: Path) -> None:
    """The stream checksum covers pg_dump's framing: when verify's pg_dump is
    not the one that made the backup, it compares row counts only and says
    so, instead of failing a good backup."""
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 300) g", "app")
    env = seawall_env(pg, backup_dir, DB_NAME="app")
    assert run_seawall(["postgres", "backup"], env).returncode == 0
    [m] = manifests(backup_dir, "app")
    path = backup_dir / "postgresql" / "logical" / "app" / m["id"] / "manifest.json"
    doctored = json.loads(path.read_text())
    doctored["tool_versions"]["pg_dump"] = "pg_dump (PostgreSQL) 14.99"
    doctored["postgres"]["stats"]["tables"]["public.t"]["checksum"] = "00000000/1"
    doctored["verification"] = None
    path.write_text(json.dumps(doctored))
    res = run_seawall(["postgres", "verify", "latest", "--deep", "--database", "app"], env)
    assert res.returncode == 0, res.stderr
    assert "content checksums not compared" in res.stdout + res.stderr
    # With the same pg_dump the doctored checksum is caught.
    doctored["tool_versions"]["pg_dump"] = m["tool_versions"]["pg_dump"]
    doctored["verification"] = None
    path.write_text(json.dumps(doctored))
    res = run_seawall(["postgres", "verify", "latest", "--deep", "--database", "app"], env)
    assert res.returncode == 3 and "content checksum differs" in res.stderr
