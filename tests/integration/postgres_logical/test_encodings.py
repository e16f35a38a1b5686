"""Databases in other encodings and locales, through the CLI (issue 11 items 3 and 4).

A restore must give back the database's encoding, LC_COLLATE/LC_CTYPE and
locale provider, not the target cluster's defaults, or refuse with one
line; and every query seawall sends must work in a SQL_ASCII database,
whose text psycopg would hand back as bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PgCluster

# Raw bytes: 0xE9 is 'é' in LATIN1 and an invalid byte in UTF-8; the table
# and column names carry one too.
SQL_ASCII_DATA = (
    b'CREATE TABLE "caf\xe9" (id int PRIMARY KEY, "na\xefve" text, raw bytea);\n'
    b"INSERT INTO \"caf\xe9\" SELECT g, 'cr\xe8me br\xfbl\xe9e ' || g || E' \\xff\\xfe', "
    b"decode(md5(g::text), 'hex') FROM generate_series(1, 500) g;\n"
    b'CREATE SEQUENCE "s\xe9q" START 40;\n'
    b"SELECT nextval('\"s\xe9q\"');\n"
)
FINGERPRINT = (
    b"SELECT count(*) || ' ' || md5(string_agg(encode(textsend(\"na\xefve\"), 'hex') "
    b"|| encode(raw, 'hex'), ',' ORDER BY id)) FROM \"caf\xe9\""
)
DB_FACTS = (
    "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider, "
    "coalesce(daticulocale, '-') FROM pg_database WHERE datname = '{}'"
)


def _psql_bytes(cluster: PgCluster, db: str, script: bytes) -> bytes:
    """Run raw bytes through psql (non-UTF-8 identifiers and values)."""
    res = subprocess.run(
        [str(cluster.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db],
        input=script,
        env={**cluster.env(), "PGCLIENTENCODING": "SQL_ASCII"},
        capture_output=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _fingerprint(cluster: PgCluster, db: str) -> bytes:
    return _psql_bytes(cluster, db, FINGERPRINT)


def test_sql_ascii_database_with_non_utf8_bytes_backs_up_verifies_and_restores(
    pg: PgCluster, backup_dir: Path
) -> None:
    pg.psql(
        "CREATE DATABASE legacy TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    _psql_bytes(pg, "legacy", SQL_ASCII_DATA)
    before = _fingerprint(pg, "legacy")
    assert before.startswith(b"500 ")
    env = seawall_env(pg, backup_dir, DB_NAME="legacy")

    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    assert "internal error" not in res.stderr
    [m] = manifests(backup_dir, "legacy")
    info = m["postgres"]
    assert info["encoding"] == "SQL_ASCII"
    assert isinstance(info["server_version_num"], int)
    assert not info["server_version"].startswith("b'")
    # names are recorded byte for byte (as Latin-1 code points)
    assert info["stats"]["tables"]["public.caf\xe9"]["rows"] == 500
    assert info["stats"]["tables"]["public.caf\xe9"]["columns"] == ["id", "na\xefve", "raw"]
    # the stream scanner read the non-UTF-8 names too (no SQL fallback)
    assert info["stats"]["checksum_method"] == "pg_dump-copy-crc32"
    assert "public.s\xe9q" in info["stats"]["sequences"]

    res = run_seawall(["postgres", "verify", "latest", "--deep", "--database", "legacy"], env)
    assert res.returncode == 0, res.stderr + res.stdout
    [m] = manifests(backup_dir, "legacy")
    assert m["verification"]["ok"] is True and m["verification"]["deep"] is True

    res = run_seawall(
        ["postgres", "restore", "latest", "--database", "legacy", "--target-db", "legacy_back"], env
    )
    assert res.returncode == 0, res.stderr
    assert pg.psql(DB_FACTS.format("legacy_back")).split("|")[0] == "SQL_ASCII"
    assert _fingerprint(pg, "legacy_back") == before
    assert _psql_bytes(pg, "legacy_back", b'SELECT last_value FROM "s\xe9q"') == b"40"


def test_latin1_c_database_comes_back_latin1_c(
    pg_factory: Callable[..., PgCluster], backup_dir: Path
) -> None:
    """Cluster default UTF8 / C.UTF-8; the database is LATIN1 / C and must stay so."""
    pg = pg_factory(locale="C.utf8")
    pg.psql("CREATE DATABASE shop TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")
    pg.psql(
        "CREATE TABLE t (id int, name text); "
        "INSERT INTO t SELECT g, 'caf' || chr(233) || ' ' || g FROM generate_series(1, 100) g",
        "shop",
    )
    env = seawall_env(pg, backup_dir, DB_NAME="shop")
    assert run_seawall(["postgres", "backup"], env).returncode == 0
    [m] = manifests(backup_dir, "shop")
    assert m["postgres"]["encoding"] == "LATIN1"
    assert m["postgres"]["lc_collate"] == "C" and m["postgres"]["lc_ctype"] == "C"
    assert m["postgres"]["locale_provider"] == "libc"
    res = run_seawall(
        ["postgres", "restore", "latest", "--database", "shop", "--target-db", "shop_back"], env
    )
    assert res.returncode == 0, res.stderr
    assert pg.psql(DB_FACTS.format("shop_back")) == "LATIN1|C|C|c|-"
    assert pg.psql("SELECT md5(string_agg(name, ',' ORDER BY id)) FROM t", "shop_back") == pg.psql(
        "SELECT md5(string_agg(name, ',' ORDER BY id)) FROM t", "shop"
    )
    # --clean over an existing database keeps the backup's encoding too
    res = run_seawall(
        ["postgres", "restore", "latest", "--database", "shop", "--target-db", "shop_back",
         "--clean"], env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert pg.psql(DB_FACTS.format("shop_back")) == "LATIN1|C|C|c|-"


def test_icu_database_keeps_its_provider(pg: PgCluster, backup_dir: Path) -> None:
    pg.psql(
        "CREATE DATABASE intl TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.utf8' "
        "LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'"
    )
    pg.psql("CREATE TABLE w (word text); INSERT INTO w VALUES ('Äpfel'), ('Zebra')", "intl")
    env = seawall_env(pg, backup_dir, DB_NAME="intl")
    assert run_seawall(["postgres", "backup"], env).returncode == 0
    [m] = manifests(backup_dir, "intl")
    assert m["postgres"]["locale_provider"] == "icu"
    assert m["postgres"]["icu_locale"] == "de-DE"
    res = run_seawall(
        ["postgres", "restore", "latest", "--database", "intl", "--target-db", "intl_back"], env
    )
    assert res.returncode == 0, res.stderr
    assert pg.psql(DB_FACTS.format("intl_back")) == "UTF8|C.utf8|C.utf8|i|de-DE"


def test_utf8_database_into_a_latin1_cluster_comes_back_utf8(
    pg_factory: Callable[..., PgCluster], backup_dir: Path
) -> None:
    source = pg_factory(locale="C.utf8")
    source.psql("CREATE DATABASE app")
    source.psql(
        "CREATE TABLE t (id int, s text); INSERT INTO t VALUES (1, '€ ü 日本'), (2, 'plain')",
        "app",
    )
    assert (
        run_seawall(
            ["postgres", "backup"], seawall_env(source, backup_dir, DB_NAME="app")
        ).returncode
        == 0
    )
    for encoding in ("LATIN1", "SQL_ASCII"):
        target = pg_factory(encoding=encoding, locale="C")
        env = seawall_env(target, backup_dir, DB_NAME="app")
        res = run_seawall(
            ["postgres", "restore", "latest", "--database", "app", "--target-db", "app_back"], env
        )
        assert res.returncode == 0, res.stderr
        assert target.psql(DB_FACTS.format("app_back")) == "UTF8|C.utf8|C.utf8|c|-"
        assert target.psql("SELECT s FROM t ORDER BY id", "app_back") == "€ ü 日本\nplain"


def test_restore_refuses_a_locale_the_target_server_lacks(pg: PgCluster, backup_dir: Path) -> None:
    """A backup made where de_DE.UTF-8 exists, restored where it does not: one
    line, exit 9, and no database left behind."""
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT 1 AS x", "app")
    env = seawall_env(pg, backup_dir, DB_NAME="app")
    assert run_seawall(["postgres", "backup"], env).returncode == 0
    [m] = manifests(backup_dir, "app")
    path = backup_dir / "postgresql" / "logical" / "app" / m["id"] / "manifest.json"
    m["postgres"]["lc_collate"] = m["postgres"]["lc_ctype"] = "de_DE.UTF-8"
    path.write_text(json.dumps(m, indent=2))
    res = run_seawall(
        ["postgres", "restore", "latest", "--database", "app", "--target-db", "app_back"], env
    )
    assert res.returncode == 9, res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "de_DE.UTF-8" in err[0] and "Traceback" not in res.stderr, err
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'app_%'") == "0"


def test_manual_restore_script_keeps_latin1(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    """docs/manual-restore.md's createdb line gives back LATIN1 / C, not the
    target cluster's UTF8 / C.UTF-8."""
    from tests.integration.postgres_logical.test_manual_restore import _script

    key, public = age_keys
    source = pg_factory(locale="C.utf8")
    source.psql(
        "CREATE DATABASE shop TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    source.psql(
        "CREATE TABLE t AS SELECT g, 'caf' || chr(233) AS s FROM generate_series(1, 9) g", "shop"
    )
    env = seawall_env(
        source, backup_dir, DB_NAME="shop", ENCRYPTION="true", ENCRYPTION_RECIPIENTS=public,
        ENCRYPTION_IDENTITY_FILE=str(key),
    )  # fmt: skip
    assert run_seawall(["postgres", "backup"], env).returncode == 0
    target = pg_factory(locale="C.utf8")
    shell_env = {
        **target.env(),
        "PATH": f"{target.bin_dir}:{os.environ['PATH']}",
        "BACKUP_DIR": str(backup_dir),
        "DB": "shop",
        "KEY": str(key),
        "TARGET": "shop_restored",
    }
    res = subprocess.run(["bash", "-c", _script()], env=shell_env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert target.psql(DB_FACTS.format("shop_restored")) == "LATIN1|C|C|c|-"
    assert target.psql("SELECT count(*) FROM t WHERE s = 'caf' || chr(233)", "shop_restored") == "9"


def test_builtin_provider_kept_on_18_and_refused_by_15(
    pg_factory: Callable[..., PgCluster], backup_dir: Path
) -> None:
    """PostgreSQL 17+ records the provider's locale in ``datlocale``; a
    server without the builtin provider (15) refuses in one line."""
    source = pg_factory(version=18)
    source.psql(
        "CREATE DATABASE app TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' "
        "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
    )
    source.psql("CREATE TABLE t AS SELECT 'ä' AS s", "app")
    env = seawall_env(source, backup_dir, DB_NAME="app")
    assert run_seawall(["postgres", "backup"], env).returncode == 0
    [m] = manifests(backup_dir, "app")
    assert m["postgres"]["locale_provider"] == "builtin"
    assert m["postgres"]["builtin_locale"] == "C.UTF-8"
    restore = ["postgres", "restore", "latest", "--database", "app", "--target-db", "app_back"]
    res = run_seawall(restore, env)
    assert res.returncode == 0, res.stderr
    facts = "SELECT datlocprovider, datlocale FROM pg_database WHERE datname = 'app_back'"
    assert source.psql(facts) == "b|C.UTF-8"

    old = pg_factory(version=15)
    res = run_seawall(restore, {**seawall_env(old, backup_dir), "PG_BIN_DIR": str(source.bin_dir)})
    assert res.returncode == 9, res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "builtin locale provider" in err[0], err
    assert "PostgreSQL 17 or newer" in err[0], err
    assert old.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'app%'") == "0"
