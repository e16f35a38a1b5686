"""A database's encoding and locale: recorded at backup, reproduced at restore.

Why: a pg_dump archive restored without ``--create`` lands in whatever
database it is given, and ``CREATE DATABASE`` without options copies the
target cluster's defaults; a LATIN1 / C database came back as UTF8 /
C.UTF-8, and a UTF8 one restored into a LATIN1 cluster failed half-way on
the first character LATIN1 lacks. So the backup records the encoding,
LC_COLLATE, LC_CTYPE and the locale provider (with its ICU or builtin
locale) in the manifest, and the restore creates the target from
``template0`` with exactly those. A target server that cannot (locale not
installed, a provider it does not have) makes the restore refuse, with one
line naming what is missing, before anything is restored.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

from seawall.catalog.models import PostgresInfo
from seawall.errors import RefusedError
from seawall.log import get_logger

log = get_logger("postgres.restore")
Conn = psycopg.Connection[Any]

_PROVIDERS: Final = {"c": "libc", "i": "icu", "b": "builtin"}
#: the first server_version_num whose CREATE DATABASE takes the provider
_PROVIDER_SINCE: Final = {"icu": 150000, "builtin": 170000}


def record(conn: Conn, info: PostgresInfo) -> None:
    """Fill ``info``'s encoding and locale fields from the connected database.

    ``to_jsonb`` of the catalog row reads whichever columns this major has
    (``datlocprovider`` from 15, ``daticulocale`` in 15-16, ``datlocale``
    from 17, ``daticurules`` from 16) without a query per version.
    """
    row = conn.execute(
        "SELECT pg_encoding_to_char(d.encoding), to_jsonb(d) FROM pg_database d "
        "WHERE d.datname = current_database()"
    ).fetchone()
    if row is None:
        return
    facts: dict[str, Any] = row[1]
    info.encoding = str(row[0])
    info.lc_collate = facts.get("datcollate")
    info.lc_ctype = facts.get("datctype")
    provider = _PROVIDERS.get(str(facts.get("datlocprovider")))
    # None before PostgreSQL 15 (libc only; createdb < 15 has no --locale-provider)
    info.locale_provider = provider  # type: ignore[assignment]
    provider_locale = facts.get("datlocale") or facts.get("daticulocale")
    if provider == "icu":
        info.icu_locale = provider_locale
        info.icu_rules = facts.get("daticurules")
    elif provider == "builtin":
        info.builtin_locale = provider_locale


def describe(info: PostgresInfo) -> str:
    """``ENCODING 'LATIN1' LC_COLLATE 'C' …`` for messages (what was asked for)."""
    parts = [f"ENCODING {info.encoding!r}"]
    if info.lc_collate is not None:
        parts += [f"LC_COLLATE {info.lc_collate!r}", f"LC_CTYPE {info.lc_ctype!r}"]
    if info.locale_provider not in (None, "libc"):
        parts.append(f"LOCALE_PROVIDER {info.locale_provider}")
    if info.icu_locale:
        parts.append(f"ICU_LOCALE {info.icu_locale!r}")
    if info.builtin_locale:
        parts.append(f"BUILTIN_LOCALE {info.builtin_locale!r}")
    return " ".join(parts)


def _options(info: PostgresInfo, server_num: int, default_encoding: str) -> list[sql.Composable]:
    opts: list[sql.Composable] = [sql.SQL("ENCODING {}").format(sql.Literal(info.encoding))]
    if info.lc_collate is None:
        # A manifest written before the locale was recorded: the cluster's
        # locale if it fits the encoding, else C (fits every encoding).
        if info.encoding != default_encoding:
            opts.append(sql.SQL("LC_COLLATE 'C' LC_CTYPE 'C'"))
            log.warning(
                "the backup recorded encoding %s but not its locale; restoring with the C locale",
                info.encoding,
            )
        return opts
    opts.append(
        sql.SQL("LC_COLLATE {} LC_CTYPE {}").format(
            sql.Literal(info.lc_collate), sql.Literal(info.lc_ctype)
        )
    )
    provider = info.locale_provider or "libc"
    needs = _PROVIDER_SINCE.get(provider, 0)
    if server_num < needs:
        raise RefusedError(
            f"the backup's database uses the {provider} locale provider, which PostgreSQL "
            f"{server_num // 10000} does not have; restore into PostgreSQL {needs // 10000} "
            "or newer"
        )
    if server_num < 150000:
        return opts  # libc, and no LOCALE_PROVIDER option before 15
    opts.append(sql.SQL("LOCALE_PROVIDER {}").format(sql.Identifier(provider)))
    if provider == "icu" and info.icu_locale:
        opts.append(sql.SQL("ICU_LOCALE {}").format(sql.Literal(info.icu_locale)))
        if info.icu_rules:
            opts.append(sql.SQL("ICU_RULES {}").format(sql.Literal(info.icu_rules)))
    if provider == "builtin" and info.builtin_locale:
        opts.append(sql.SQL("BUILTIN_LOCALE {}").format(sql.Literal(info.builtin_locale)))
    return opts


def create_like(conn: Conn, name: str, info: PostgresInfo | None, server_num: int) -> None:
    """``CREATE DATABASE name TEMPLATE template0`` with the backup's encoding and locale.

    Without a recorded encoding (a foreign dump) the target cluster's
    defaults apply, as ``createdb`` would. A server error about the
    encoding or locale becomes RefusedError (exit 9): the restore was not
    attempted and nothing was created.
    """
    from seawall.postgres.logical import server

    if info is None or info.encoding is None:
        server.create_database(conn, name)
        return
    row = conn.execute(
        "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'template0'"
    ).fetchone()
    default_encoding = str(row[0]) if row else ""
    query = sql.SQL(" ").join(
        [
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)),
            *_options(info, server_num, default_encoding),
        ]
    )
    try:
        conn.execute(query)
    except (psycopg.errors.InsufficientPrivilege, psycopg.OperationalError) as exc:
        raise server.sql_error(f"cannot create database {name!r}", exc) from None
    except psycopg.Error as exc:
        diag = getattr(exc, "diag", None)
        detail = (diag.message_primary if diag is not None else None) or str(exc).strip()
        raise RefusedError(
            f"the target server cannot create a database like the backup's ({describe(info)}): "
            f"{detail}; install that locale on the target server's host (see `locale -a`) "
            "or restore into a server that has it"
        ) from None
