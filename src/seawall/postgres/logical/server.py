"""Connecting to the server and picking matching client programs.

psycopg is used for facts and statistics (server version, snapshot export,
row checksums) and for the few DDL statements a restore needs (CREATE,
RENAME, DROP DATABASE); the dump and restore themselves are the PostgreSQL
programs, via the typed wrappers in :mod:`seawall.postgres.tools`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg
from psycopg import sql

from seawall.catalog.rejected import TargetMissing
from seawall.errors import ConfigError, SeawallError, SourceUnavailableError
from seawall.postgres.sqlconn import open_connection
from seawall.postgres.tools.base import DEBIAN_ROOT, ConnParams, binary_version, find_binary
from seawall.settings import Settings


def connect(
    params: ConnParams, dbname: str | None = None, *, autocommit: bool = True
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection; connection/auth failures become SourceUnavailableError."""
    try:
        return open_connection(params.conninfo(dbname), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        hint = (
            "check the password (DB_PASSWORD / PGPASSWORD / *_FILE)"
            if "password" in str(exc)
            else "check DB_HOST/DB_PORT/DB_NAME and that the server is up"
        )
        cls = SourceUnavailableError
        if getattr(exc, "sqlstate", None) == "3D000" or (
            dbname is not None and f'database "{dbname}" does not exist' in str(exc)
        ):
            cls = DatabaseMissingError
            hint = "check DB_NAME / DATABASES (`psql -l` lists the databases)"
        raise cls(
            f"cannot connect to PostgreSQL at {params.describe(dbname)}: {text}; {hint}"
        ) from None


class DatabaseMissingError(TargetMissing, SourceUnavailableError):
    """The server is up but has no database of that name (a typo in DB_NAME?).

    A backup run of a database that was never backed up successfully is then
    recorded as rejected, not as a new failing series (catalog/rejected.py).
    """


def maintenance_db(avoid: str | None = None) -> str:
    """Where to run CREATE/RENAME/DROP DATABASE and globals: ``postgres``
    (``template1`` when ``postgres`` itself is being replaced). Not DB_NAME,
    which is often the very database being restored into a new cluster."""
    return "template1" if avoid == "postgres" else "postgres"


@contextmanager
def admin(
    params: ConnParams, avoid: str | None = None
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the maintenance database (never ``avoid``, which we may rename)."""
    conn = connect(params, maintenance_db(avoid))
    try:
        yield conn
    finally:
        conn.close()


def server_version_num(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(str(row[0]))


def server_version(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row[0]).split()[0]


def database_exists(conn: psycopg.Connection[tuple[object, ...]], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def sql_error(what: str, exc: psycopg.Error) -> SeawallError:
    """A one-line error from a server error (connection loss → exit 5)."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    detail = primary or str(exc).strip() or type(exc).__name__
    if isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None:
        return SourceUnavailableError(f"{what}: lost the connection to PostgreSQL ({detail})")
    hint = ""
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        hint = "; the database user needs CREATEDB (and ownership to rename or drop)"
    return SeawallError(f"{what}: {detail}{hint}")


@contextmanager
def ddl(what: str) -> Iterator[None]:
    """Turn server errors inside the block into one-line SeawallErrors."""
    try:
        yield
    except psycopg.Error as exc:
        raise sql_error(what, exc) from None


def create_database(
    conn: psycopg.Connection[tuple[object, ...]], name: str, encoding: str | None = None
) -> None:
    """``CREATE DATABASE … TEMPLATE template0``; with ``encoding``, in that
    encoding and the C locale (compatible with every encoding)."""
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if encoding:
        query = sql.SQL("{} ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C'").format(
            query, sql.Literal(encoding)
        )
    with ddl(f"cannot create database {name!r}"):
        conn.execute(query)


def drop_database(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """Drop a database, disconnecting its sessions (WITH FORCE, PG 13+)."""
    with ddl(f"cannot drop database {name!r}"):
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def terminate_sessions(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    with ddl(f"cannot disconnect the sessions of {name!r}"):
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


def rename_database(conn: psycopg.Connection[tuple[object, ...]], old: str, new: str) -> None:
    with ddl(f"cannot rename database {old!r} to {new!r}"):
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(old), sql.Identifier(new)
            )
        )


@lru_cache(maxsize=64)
def _major(path: str) -> int:
    out = binary_version(Path(path))
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(m.group(1)) if m else 0


def tool_path(settings: Settings, name: str, min_major: int | None) -> Path:
    """A PostgreSQL program of at least ``min_major``: PG_BIN_DIR, Debian dirs, PATH.

    Selection is done here rather than by ``find_binary(min_major=...)``, whose
    version parsing misreads Debian's ``pg_dump (PostgreSQL) 15.8 (Debian …)``.
    """
    if min_major is None:
        return find_binary(name, settings.pg_bin_dir)
    candidates: list[Path] = []
    if settings.pg_bin_dir is not None:
        candidates.append(Path(settings.pg_bin_dir) / name)
    if DEBIAN_ROOT.is_dir():
        majors = sorted(
            (int(d.name) for d in DEBIAN_ROOT.iterdir() if d.name.isdigit()), reverse=True
        )
        candidates += [DEBIAN_ROOT / str(v) / "bin" / name for v in majors]
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    existing = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
    for cand in existing:
        if _major(str(cand)) >= min_major:
            return cand
    if not existing:
        return find_binary(name, settings.pg_bin_dir)  # raises the not-found ConfigError
    raise ConfigError(
        f"{name} at {existing[0]} is PostgreSQL {_major(str(existing[0]))} but PostgreSQL "
        f"{min_major} or newer is needed; set PG_BIN_DIR to PostgreSQL {min_major}+ binaries"
    )
