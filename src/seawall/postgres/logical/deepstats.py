"""The restored copy's statistics, in the terms the backup recorded them.

Why: pg_restore recreates an inheritance child with the parent's columns
first, whatever order the source had (``CREATE TABLE m(id, city); CREATE
TABLE m24(extra) INHERITS (m); ALTER TABLE m ADD temp`` dumps m24 as ``id,
city, extra, temp`` and restores it as ``id, city, temp, extra``), and the
child of a typed table likewise. Every checksum of rows depends on column
order, so comparing the restored table's checksum with the backup's marked
correct backups FAILED, and retention then deleted them.

Since stats format 2 the manifest records per table the column order its
checksum was computed in (pg_dump's COPY column list). Here the restored
copy's checksum is computed in that order: for the SQL method with
``ROW(<recorded columns>)``; for the stream method (a CRC of pg_dump's
framed COPY data) by copying each reordered table, columns in the recorded
order, into a scratch schema of the scratch database, so that the same
pg_dump and the same scanner read it (rows keep their order: a sequential
scan of a freshly restored heap, no parallel workers).

What cannot be decided is reported as *undecided*, never as a failure: a
manifest of format 1 has no column order, so a reorder-prone table
(inheritance child, typed table) whose checksum differs is undecided, its
row count still compared; so are all checksums when verify's pg_dump is
not the one that made the backup (the framing may differ) or when the
scanner cannot read verify's own re-dump.

Manifests before stats format 3 key relations by ``schema.name`` unquoted
(:mod:`relkey`): their keys are mapped to the restored copy's quoted keys
first (:func:`_rekey_legacy`), and two relations of the restored copy that
share one old key (``"a.b".c`` and ``a."b.c"``) are undecided: the manifest
recorded only one of them and does not say which.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final, TypeVar

import psycopg
from psycopg import sql

from seawall.catalog.models import ContentStats, TableStats
from seawall.context import Context
from seawall.log import get_logger
from seawall.postgres.logical import dumpscan, server, stats
from seawall.postgres.logical.relkey import QUOTED_KEYS_FORMAT, legacy_key
from seawall.postgres.tools.base import ConnParams
from seawall.postgres.tools.pg_dump import PgDump

log = get_logger("postgres.verify")

_V = TypeVar("_V")

#: where reordered copies go in the scratch database (dropped with it)
REORDER_SCHEMA: Final = "seawall_verify_reorder"


@dataclass
class Measured:
    """What to compare: ``expected`` without the checksums that cannot be
    compared, ``actual`` of the restored copy, and why (``undecided``)."""

    expected: ContentStats
    actual: ContentStats
    problems: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    #: tables whose checksum could not be computed in the recorded order
    skipped: set[str] = field(default_factory=set)
    #: sequences of the restored copy that count down (see stats.compare)
    descending: set[str] = field(default_factory=set)


def _without_checksums(expected: ContentStats, keys: set[str] | None = None) -> ContentStats:
    """``expected`` with the checksums of ``keys`` (None: all) removed."""
    tables = {
        k: TableStats(rows=t.rows, columns=t.columns) if keys is None or k in keys else t
        for k, t in expected.tables.items()
    }
    return expected.model_copy(update={"tables": tables})


def measure(
    ctx: Context,
    params: ConnParams,
    sconn: stats.Conn,
    name: str,
    major: int,
    expected: ContentStats,
    made_by: str | None,
) -> Measured:
    """Statistics of the restored scratch database ``name`` comparable with ``expected``.

    ``made_by`` is the pg_dump version that made the backup (stream method).
    """
    restored = stats.tables(sconn, checksums=False)
    result = Measured(expected=expected, actual=ContentStats())
    ambiguous: set[str] = set()
    if expected.format < QUOTED_KEYS_FORMAT:
        expected, ambiguous = _rekey_legacy(expected, restored, stats.sequences(sconn), result)
    order: dict[str, list[str]] = {}
    mismatched: set[str] = set()
    for key, want in expected.tables.items():
        got = restored.get(key)
        if got is None or want.checksum is None or want.columns is None:
            continue
        have = got.columns or []
        if have == want.columns:
            continue
        if sorted(have) == sorted(want.columns):
            order[key] = want.columns
        else:
            mismatched.add(key)
            result.problems.append(
                f"table {key}: columns ({', '.join(have)}) after restore, "
                f"expected ({', '.join(want.columns)})"
            )
    if expected.checksum_method == dumpscan.METHOD:
        sums: dict[str, str] = {}
        try:
            sums, now = _stream_checksums(ctx, params, sconn, name, major, order, result)
        except dumpscan.ScanError as exc:
            # verify's own re-dump: says nothing about the backup
            expected = _without_checksums(expected)
            result.undecided.append(
                f"content checksums not compared: the restored copy's data-only dump could "
                f"not be scanned ({exc}); row counts, sequences and large objects compared"
            )
        else:
            if made_by != now:
                # The checksum covers pg_dump's framing of the COPY data; another
                # pg_dump may frame it differently.
                expected = _without_checksums(expected)
                result.undecided.append(
                    f"content checksums not compared: made by {made_by or 'unknown'}, this server "
                    f"needs {now}; row counts, sequences and large objects compared"
                )
        tables = {
            k: TableStats(rows=t.rows, checksum=sums.get(k), columns=t.columns)
            for k, t in restored.items()
        }
    else:
        tables = stats.tables(sconn, order=order, whole_row=expected.format < 2)
    expected = _without_checksums(expected, mismatched | result.skipped)
    result.actual = ContentStats(
        tables=tables, sequences=stats.sequences(sconn), large_objects=stats.large_objects(sconn)
    )
    result.descending = stats.descending_sequences(sconn)
    if ambiguous:  # in neither: compared with nothing, reported as undecided
        result.actual.tables = {k: v for k, v in tables.items() if k not in ambiguous}
        result.actual.sequences = {
            k: v for k, v in result.actual.sequences.items() if k not in ambiguous
        }
    result.expected = _undecided_legacy(sconn, expected, result)
    return result


def _rekey_legacy(
    expected: ContentStats,
    tables: dict[str, TableStats],
    sequences: dict[str, int | None],
    result: Measured,
) -> tuple[ContentStats, set[str]]:
    """``expected`` (stats format < 3) keyed like the restored copy, and the keys
    of the restored relations that shared an old key with another one.

    An old key no restored relation has stays as it is (reported missing).
    """
    ambiguous: set[str] = set()

    def rekey(recorded: dict[str, _V], restored: Collection[str], kind: str) -> dict[str, _V]:
        new: dict[str, list[str]] = {}
        for key in restored:
            new.setdefault(legacy_key(key), []).append(key)
        out: dict[str, _V] = {}
        for old, value in recorded.items():
            keys = new.get(old, [old])
            if len(keys) == 1:
                out[keys[0]] = value
                continue
            ambiguous.update(keys)
            result.undecided.append(
                f"{kind}s {', '.join(sorted(keys))}: not compared: the manifest predates stats "
                f"format 3 and recorded only one {kind} under their common key {old}"
            )
        return out

    update = {
        "tables": rekey(expected.tables, tables, "table"),
        "sequences": rekey(expected.sequences, sequences, "sequence"),
    }
    return expected.model_copy(update=update), ambiguous


def _undecided_legacy(sconn: stats.Conn, expected: ContentStats, result: Measured) -> ContentStats:
    """Format 1 (no column order recorded): a differing checksum of a table
    the restore may have reordered says nothing about the backup."""
    if expected.format >= 2:
        return expected
    prone = stats.reorder_prone(sconn)
    undecidable: set[str] = set()
    for key, want in expected.tables.items():
        got = result.actual.tables.get(key)
        if want.checksum is None or got is None or got.checksum == want.checksum:
            continue
        if key in prone and got.rows == want.rows:
            undecidable.add(key)
            result.undecided.append(
                f"{key}: content checksum not compared: the manifest predates recorded column "
                "orders and a restore may reorder this table's columns (inheritance child or "
                "typed table); row count compared"
            )
    return _without_checksums(expected, undecidable) if undecidable else expected


def _stream_checksums(
    ctx: Context,
    params: ConnParams,
    sconn: stats.Conn,
    name: str,
    major: int,
    order: dict[str, list[str]],
    result: Measured,
) -> tuple[dict[str, str], str]:
    """Stream checksums of the restored copy (``order``: tables to checksum in
    another column order), and the version of the pg_dump that made them."""
    aliases = _reordered_copies(sconn, order, result) if order else {}
    sums, version = _redump_checksums(ctx, params, name, major)
    for key, alias in aliases.items():
        value = sums.pop(alias, None)
        if value is None:
            sums.pop(key, None)
        else:
            sums[key] = value
    return sums, version


def _reordered_copies(
    sconn: stats.Conn, order: dict[str, list[str]], result: Measured
) -> dict[str, str]:
    """Copy each table of ``order`` with its columns in the recorded order into
    :data:`REORDER_SCHEMA`; returns table key -> the copy's key."""
    relations = stats.relations(sconn)
    aliases: dict[str, str] = {}
    try:
        # Rows in heap order, as pg_dump's COPY reads them: no parallel scan,
        # no synchronized scan starting mid-table.
        sconn.execute("SET max_parallel_workers_per_gather = 0")
        sconn.execute("SET synchronize_seqscans = off")
        sconn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(REORDER_SCHEMA)))
        for i, (key, columns) in enumerate(sorted(order.items())):
            schema, table = relations[key]
            copy = f"t{i}"
            sconn.execute(
                sql.SQL("CREATE TABLE {}.{} AS SELECT {} FROM ONLY {}.{} AS t").format(
                    sql.Identifier(REORDER_SCHEMA),
                    sql.Identifier(copy),
                    sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
                    sql.Identifier(schema),
                    sql.Identifier(table),
                )
            )
            aliases[key] = f"{REORDER_SCHEMA}.{copy}"
    except (psycopg.Error, KeyError) as exc:
        log.warning("could not copy reordered tables for their checksums: %s", exc)
        for key in order:
            if key not in aliases:
                result.skipped.add(key)
                result.undecided.append(
                    f"{key}: content checksum not compared: restored with another column "
                    f"order and it could not be copied in the recorded one ({exc})"
                )
                aliases[key] = f"{REORDER_SCHEMA}.missing"
    return aliases


def _redump_checksums(
    ctx: Context, params: ConnParams, name: str, major: int
) -> tuple[dict[str, str], str]:
    """The restored copy's checksums, computed the way the backup computed its
    own, and the version of the pg_dump that made them.

    The backup read them off its pg_dump stream (``dumpscan``); the same
    scanner over a data-only pg_dump of the restored copy gives comparable
    numbers, with no per-row work in Python, as long as it is the same
    pg_dump version (the caller checks).
    """
    dump = PgDump(server.tool_path(ctx.settings, "pg_dump", major), params)
    proc = dump.spawn(name, data_only=True)
    assert proc.stdout is not None
    try:
        scanner = dumpscan.scan_stream(proc.stdout)  # type: ignore[arg-type]
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    PgDump.check(proc)
    return scanner.checksums(), dump.version()  # ScanError: see measure()
