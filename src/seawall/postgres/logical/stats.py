"""Content statistics in SQL: what verify --deep compares a restored copy against.

Per table: the exact row count (``count(*)``), the column order the
checksum is defined in (a restore may recreate inheritance children and
typed tables with another order; verify computes in the recorded one), and,
only where the dump stream could not be scanned (see :mod:`dumpscan`, the
default source of checksums) or for backups made before it, the SQL
checksum: the sum of ``hashtextextended(ROW(<columns>)::text, 0)`` over all
rows (row-order independent; the extended hash functions are stable across
majors because hash partitioning depends on them; stats format 1 hashed
``row::text``, in whatever order the table had). Per sequence:
``last_value``. And the number of large objects.

At backup time the statistics are taken in the transaction that exported
the snapshot given to ``pg_dump --snapshot``, so both see the same data.
Sequences are not transactional: their values are read before pg_dump
starts, so a restored sequence may be *ahead* of the recorded value on a
busy database, never behind (see :func:`compare`); "ahead" is in the
sequence's own direction: below the recorded value for a descending one.

Tables and sequences are keyed by :func:`~seawall.postgres.logical.relkey.relation_key`
(``schema.name``, a part quoted when it holds a dot or a quote: stats
format 3; see :mod:`relkey` for why).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import psycopg
from psycopg import sql

from seawall.catalog.models import STATS_FORMAT, ContentStats, TableStats
from seawall.postgres.logical.relkey import relation_key

Conn = psycopg.Connection[Any]

_TABLES = """
SELECT n.nspname, c.relname,
       (SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
        FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
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
    return {relation_key(r[0], r[1]): (int(r[2]) if r[2] is not None else None) for r in rows}


_DESCENDING = """
SELECT schemaname, sequencename FROM pg_sequences
WHERE increment_by < 0 AND schemaname NOT IN ('pg_catalog', 'information_schema')
"""


def descending_sequences(conn: Conn) -> set[str]:
    """Keys of the sequences that count down (``INCREMENT`` < 0): on a busy
    database their restored value may be *below* the recorded one. Read from
    the restored copy, whose definitions came from the dump: older manifests
    need no new field."""
    return {relation_key(r[0], r[1]) for r in conn.execute(_DESCENDING).fetchall()}


def large_objects(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    return int(row[0]) if row else 0


_REORDER_PRONE = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND (c.reloftype <> 0 OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid))
"""


def tables(
    conn: Conn,
    checksums: bool = True,
    order: Mapping[str, list[str]] | None = None,
    whole_row: bool = False,
) -> dict[str, TableStats]:
    """Row counts, column order and (unless ``checksums`` is off) SQL checksums per table.

    ``columns`` is the table's columns as pg_dump's COPY lists them (attnum
    order, no dropped or generated columns). The checksum hashes each row
    as ``ROW(<columns>)::text``, the columns in ``order[table]`` where given
    (verify: the order recorded at backup time, which a restore may have
    changed) else in the table's own order. ``whole_row`` hashes ``t::text``
    instead, the definition of manifests in stats format 1.

    The SQL checksum needs every row rendered as text: a second full scan
    competing with pg_dump, which is why backups take checksums from the
    dump stream and use this only as the fallback.
    """
    result: dict[str, TableStats] = {}
    for schema, name, columns in conn.execute(_TABLES).fetchall():
        key = relation_key(schema, name)
        cols = list((order or {}).get(key) or columns)
        if not checksums:
            digest: sql.Composable = sql.SQL("NULL")
        elif whole_row:
            digest = sql.SQL("coalesce(sum(hashtextextended(t::text, 0)), 0)")
        else:
            digest = sql.SQL("coalesce(sum(hashtextextended(ROW({})::text, 0)), 0)").format(
                sql.SQL(", ").join(sql.Identifier("t", c) for c in cols)
            )
        query = sql.SQL("SELECT count(*), {} FROM ONLY {}.{} AS t").format(
            digest, sql.Identifier(schema), sql.Identifier(name)
        )
        row = conn.execute(query).fetchone()
        assert row is not None
        checksum = str(row[1]) if row[1] is not None else None
        result[key] = TableStats(rows=int(row[0]), checksum=checksum, columns=list(columns))
    return result


def relations(conn: Conn) -> dict[str, tuple[str, str]]:
    """``schema.table`` key -> (schema, table), for building SQL from a key."""
    rows = conn.execute(_TABLES).fetchall()
    return {relation_key(r[0], r[1]): (str(r[0]), str(r[1])) for r in rows}


def reorder_prone(conn: Conn) -> set[str]:
    """Tables a restore may recreate in another column order: children of an
    inheritance tree and typed tables (pg_dump writes only their own columns
    and lets the server add the inherited ones first)."""
    return {relation_key(r[0], r[1]) for r in conn.execute(_REORDER_PRONE).fetchall()}


def collect(
    conn: Conn, order: Mapping[str, list[str]] | None = None, whole_row: bool = False
) -> ContentStats:
    """All statistics of the connected database, in the current transaction
    (``order``, ``whole_row``: see :func:`tables`)."""
    return ContentStats(
        tables=tables(conn, order=order, whole_row=whole_row),
        sequences=sequences(conn),
        large_objects=large_objects(conn),
        format=STATS_FORMAT,
    )


def compare(
    expected: ContentStats, actual: ContentStats, descending: Collection[str] = ()
) -> list[str]:
    """Differences as human-readable lines (empty = identical).

    ``descending``: sequences that count down (:func:`descending_sequences`),
    for which "behind" the recorded value means above it.
    """
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
        if want_value is None:
            continue
        down = name in descending
        if got_value is None or (got_value > want_value if down else got_value < want_value):
            bound = "<=" if down else ">="
            problems.append(
                f"sequence {name}: last_value {got_value}, expected {bound} {want_value}"
            )
    if actual.large_objects != expected.large_objects:
        problems.append(
            f"{actual.large_objects} large objects after restore, expected {expected.large_objects}"
        )
    return problems
