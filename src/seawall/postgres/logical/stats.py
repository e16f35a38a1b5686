"""Content statistics in SQL: what verify --deep compares a restored copy against.

Per table: the exact row count (``count(*)``), and, only where the dump
stream could not be scanned (see :mod:`dumpscan`, the default source of
checksums) or for backups made before it, the SQL checksum: the sum of
``hashtextextended(row::text, 0)`` over all rows (order independent; the
extended hash functions are stable across majors because hash partitioning
depends on them). Per sequence: ``last_value``. And the number of large
objects.

At backup time the statistics are taken in the transaction that exported
the snapshot given to ``pg_dump --snapshot``, so both see the same data.
Sequences are not transactional: their values are read before pg_dump
starts, so a restored sequence may be *ahead* of the recorded value on a
busy database, never behind (see :func:`compare`).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from seawall.catalog.models import ContentStats, TableStats

Conn = psycopg.Connection[Any]

_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

_SEQUENCES = """
SELECT schemaname, sequencename, last_value FROM pg_sequences
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2
"""


def sequences(conn: Conn) -> dict[str, int | None]:
    rows = conn.execute(_SEQUENCES).fetchall()
    return {f"{r[0]}.{r[1]}": (int(r[2]) if r[2] is not None else None) for r in rows}


def large_objects(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    return int(row[0]) if row else 0


def tables(conn: Conn, checksums: bool = True) -> dict[str, TableStats]:
    """Row counts and (unless ``checksums`` is off) SQL checksums per table.

    The SQL checksum needs every row rendered as text: a second full scan
    competing with pg_dump, which is why backups take checksums from the
    dump stream and use this only as the fallback.
    """
    result: dict[str, TableStats] = {}
    for schema, name in conn.execute(_TABLES).fetchall():
        if checksums:
            template = (
                "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) "
                "FROM ONLY {}.{} AS t"
            )
        else:
            template = "SELECT count(*), NULL FROM ONLY {}.{} AS t"
        query = sql.SQL(template).format(sql.Identifier(schema), sql.Identifier(name))
        row = conn.execute(query).fetchone()
        assert row is not None
        checksum = str(row[1]) if row[1] is not None else None
        result[f"{schema}.{name}"] = TableStats(rows=int(row[0]), checksum=checksum)
    return result


def collect(conn: Conn) -> ContentStats:
    """All statistics of the connected database, in the current transaction."""
    return ContentStats(
        tables=tables(conn), sequences=sequences(conn), large_objects=large_objects(conn)
    )


def compare(expected: ContentStats, actual: ContentStats) -> list[str]:
    """Differences as human-readable lines (empty = identical)."""
    problems: list[str] = []
    for name, want in expected.tables.items():
        got = actual.tables.get(name)
        if got is None:
            problems.append(f"table {name} missing after restore")
        elif got.rows != want.rows:
            problems.append(f"table {name}: {got.rows} rows, expected {want.rows}")
        elif want.checksum is not None and got.checksum != want.checksum:
            problems.append(f"table {name}: content checksum differs")
    for name in sorted(set(actual.tables) - set(expected.tables)):
        problems.append(f"table {name} present after restore but not at backup time")
    for name, want_value in expected.sequences.items():
        if name not in actual.sequences:
            problems.append(f"sequence {name} missing after restore")
            continue
        got_value = actual.sequences[name]
        if want_value is not None and (got_value is None or got_value < want_value):
            problems.append(f"sequence {name}: last_value {got_value}, expected >= {want_value}")
    if actual.large_objects != expected.large_objects:
        problems.append(
            f"{actual.large_objects} large objects after restore, expected {expected.large_objects}"
        )
    return problems
