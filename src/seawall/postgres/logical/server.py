"""Connecting to the server and picking matching client programs.

psycopg is used for facts and statistics (server version, snapshot export,
row checksums) and for the few DDL statements a restore needs (CREATE,
RENAME, DROP DATABASE); the dump and restore themselves are the PostgreSQL
programs, via the typed wrappers in :mod:`seawall.postgres.tools`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from seawall.errors import SourceUnavailableError
from seawall.postgres.tools.base import ConnParams, find_binary
from seawall.settings import Settings


def conn_params(settings: Settings) -> ConnParams:
    return ConnParams(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        dbname=settings.db_name,
        password=settings.db_password.get_secret_value() if settings.db_password else None,
        passfile=settings.pgpassfile,
    )


def connect(params: ConnParams, dbname: str | None = None, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection; connection/auth failures become SourceUnavailableError."""
    try:
        return psycopg.connect(**params.conninfo(dbname), autocommit=autocommit)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        hint = (
            "check the password (DB_PASSWORD / PGPASSWORD / *_FILE)"
            if "password" in str(exc)
            else "check DB_HOST/DB_PORT/DB_NAME and that the server is up"
        )
        raise SourceUnavailableError(
            f"cannot connect to PostgreSQL at {params.describe(dbname)}: {text}; {hint}"
        ) from None


@contextmanager
def admin(params: ConnParams, avoid: str | None = None) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to a maintenance database (not ``avoid``, which we may rename)."""
    dbname = params.dbname if params.dbname != avoid else None
    if dbname is None:
        dbname = "postgres" if avoid != "postgres" else "template1"
    conn = connect(params, dbname)
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


def create_database(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def drop_database(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """Drop a database, disconnecting its sessions (WITH FORCE, PG 13+)."""
    conn.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def terminate_sessions(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )


def rename_database(conn: psycopg.Connection[tuple[object, ...]], old: str, new: str) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )


def tool_path(settings: Settings, name: str, min_major: int | None) -> Path:
    return find_binary(name, settings.pg_bin_dir, min_major)
