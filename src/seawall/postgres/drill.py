"""The PostgreSQL part of ``seawall drill``: restore for real, check, drop.

A logical backup is restored with the deep verification's own code
(:func:`seawall.postgres.logical.verify.deep_check`: decode, checksums,
``pg_restore`` into a scratch database, the content statistics recorded at
backup time compared) into a database named ``seawall_drill_<drill id>`` on
the configured server. Before it is dropped, two more checks run on the
restored copy:

- **amcheck**: ``bt_index_check(index, heapallindexed => true)`` on every
  B-tree index: the index structure is sound and every heap tuple is in it.
  The extension is created in the scratch database only.
- **smoke query** (``DRILL_SMOKE_QUERY``): the operators' own question, run in
  a read-only transaction; its first value is compared with
  ``DRILL_SMOKE_MIN`` (at least) and/or ``DRILL_SMOKE_EXPECT`` (equal as text).

Production is never written: the drill connects to the maintenance database
(to create and drop the scratch one) and to the scratch database only.
Scratch names carry the drill id, so a drill killed with -9 leaves objects
the next drill recognises by name and drops before it starts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import psycopg

from seawall.catalog.models import Manifest, utcnow
from seawall.context import Context
from seawall.drill.model import Check, Step, TargetResult
from seawall.errors import RefusedError, SeawallError
from seawall.log import get_logger
from seawall.postgres.logical import server
from seawall.postgres.logical.select import BackupSource
from seawall.postgres.logical.verify import deep_check
from seawall.postgres.tools.base import ConnParams

log = get_logger("postgres.drill")

PREFIX = "seawall_drill_"
#: a drill's scratch object: the prefix, the drill id (lower case, ``_`` for ``-``), a suffix
LEFTOVER = re.compile(r"^seawall_drill_(\d{8}t\d{6}z_[0-9a-f]{4})(?:_.*)?$")

#: called with (connection parameters, scratch database) before the checks: tests
#: damage the restored copy through it to prove the checks catch it
BeforeChecks = Callable[[ConnParams, str], None]

_BTREE_INDEXES = """
SELECT c.oid, c.oid::regclass::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am a ON a.oid = c.relam
WHERE a.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
ORDER BY 2
"""


def scratch_context(ctx: Context) -> Context:
    """The context whose server holds the scratch databases: DRILL_DB_HOST/PORT
    when set (a separate scratch server), else the configured server."""
    s = ctx.settings
    if s.drill_db_host is None and s.drill_db_port is None:
        return ctx
    return Context(
        s.model_copy(
            update={
                "db_host": s.drill_db_host or s.db_host,
                "db_port": s.drill_db_port or s.db_port,
            }
        )
    )


def scratch_key(drill_id: str) -> str:
    """The drill id as it appears in scratch names (``20261205t212300z_1a2b``)."""
    return drill_id.lower().replace("-", "_")


def scratch_database(drill_id: str) -> str:
    return PREFIX + scratch_key(drill_id)


def is_leftover(name: str, drill_id: str) -> bool:
    """A scratch object of an *earlier* drill (ids sort by time)."""
    m = LEFTOVER.match(name)
    return m is not None and m.group(1) < scratch_key(drill_id)


def remove_leftovers(params: ConnParams, drill_id: str) -> list[str]:
    """Drop the scratch databases earlier drills left behind (kill -9, lost connection)."""
    removed: list[str] = []
    with server.admin(params) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
            (PREFIX.replace("_", r"\_") + "%",),
        ).fetchall()
        for (name,) in rows:
            if is_leftover(str(name), drill_id):
                server.drop_database(conn, str(name))
                log.warning("dropped the scratch database of an earlier drill: %s", name)
                removed.append(f"postgresql database {name}")
    return removed


def _primary(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None else None) or str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def amcheck(params: ConnParams, dbname: str) -> tuple[int, list[str]]:
    """``bt_index_check`` every B-tree index; (indexes checked, problems)."""
    problems: list[str] = []
    with server.connect(params, dbname) as conn:
        with server.ddl(f"cannot create the amcheck extension in {dbname!r}"):
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        indexes = conn.execute(_BTREE_INDEXES).fetchall()
        for oid, label in indexes:
            try:
                conn.execute("SELECT bt_index_check(%s::oid::regclass, true)", (oid,))
            except psycopg.Error as exc:
                problems.append(f"{label}: {_primary(exc)}")
    return len(indexes), problems


def check_indexes(
    target: TargetResult,
    params: ConnParams,
    databases: Sequence[str],
    *,
    name_databases: bool,
) -> None:
    """amcheck ``databases`` as one timed step and one check.

    One function so the logical and the PITR drill word a corrupt index the
    same way (docs/drills.md shows the line). ``name_databases`` prefixes
    each problem with its database and counts the databases, for a restore
    that holds a whole cluster rather than one database.
    """
    total, problems = 0, []
    where = f" in {len(databases)} databases" if name_databases else ""
    try:
        with target.step("amcheck") as step:
            for db in databases:
                count, found = amcheck(params, db)
                total += count
                problems += [f"{db}: {p}" for p in found] if name_databases else found
            step.detail = f"{total} B-tree indexes{where}"
    except SeawallError as exc:
        target.check("amcheck", "failed", str(exc))
        return
    if problems:
        target.check(
            "amcheck",
            "failed",
            f"{len(problems)} of {total} B-tree indexes corrupt: " + "; ".join(problems[:5]),
        )
    else:
        target.check("amcheck", "passed", f"bt_index_check passed on {total} B-tree indexes{where}")


def smoke(ctx: Context, params: ConnParams, dbname: str) -> tuple[bool, str]:
    """Run DRILL_SMOKE_QUERY read-only; (passed, what it returned against what was expected)."""
    s = ctx.settings
    assert s.drill_smoke_query is not None
    with server.connect(params, dbname, autocommit=False) as conn:
        try:
            conn.execute("SET TRANSACTION READ ONLY")
            row = conn.execute(s.drill_smoke_query.encode()).fetchone()
        except psycopg.Error as exc:
            return False, f"the query failed: {_primary(exc)}"
        finally:
            conn.rollback()
    value = row[0] if row else None
    if s.drill_smoke_min is not None:
        try:
            number = float(str(value))
        except ValueError:
            return False, f"returned {value!r}, expected a number of at least {s.drill_smoke_min:g}"
        if number < s.drill_smoke_min:
            return False, f"returned {value}, expected at least {s.drill_smoke_min:g}"
    if s.drill_smoke_expect is not None and str(value) != s.drill_smoke_expect:
        return False, f"returned {value!r}, expected {s.drill_smoke_expect!r}"
    return True, f"returned {value!r}"


def run_checks(
    ctx: Context,
    target: TargetResult,
    params: ConnParams,
    dbname: str,
    database: str,
) -> None:
    """amcheck and the smoke query on a restored copy, each a timed step and a check."""
    check_indexes(target, params, [dbname], name_databases=False)
    s = ctx.settings
    if s.drill_smoke_query is None:
        target.check("smoke query", "skipped", "DRILL_SMOKE_QUERY is not set")
        return
    if s.drill_smoke_database is not None and s.drill_smoke_database != database:
        target.check("smoke query", "skipped", f"DRILL_SMOKE_DATABASE is {s.drill_smoke_database}")
        return
    try:
        with target.step("smoke query"):
            ok, detail = smoke(ctx, params, dbname)
    except SeawallError as exc:
        ok, detail = False, str(exc)
    target.check("smoke query", "passed" if ok else "failed", detail)


def drill_logical(
    ctx: Context,
    manifest: Manifest,
    drill_id: str,
    *,
    before_checks: BeforeChecks | None = None,
) -> TargetResult:
    """Restore ``manifest`` into ``seawall_drill_<id>``, check it, drop it."""
    from seawall.catalog.locks import backup_hold

    ctx = scratch_context(ctx)
    name = scratch_database(drill_id)
    target = TargetResult(
        "postgresql", "logical", manifest.series, backup_id=manifest.id, scratch=name
    )
    target.started_at = utcnow()
    # the dump is one snapshot taken when it started: that is the point it restores
    target.recovered_to = manifest.started_at
    target.rpo_seconds = _age(manifest.started_at, target.started_at)
    params = ConnParams.from_settings(ctx.settings)
    source = BackupSource(
        ctx.storage, f"backup {manifest.id} of {manifest.series}", manifest, in_catalog=True
    )
    t0 = time.monotonic()
    marks: dict[str, float] = {}

    def then(p: ConnParams, dbname: str) -> None:
        marks["restored"] = time.monotonic()
        if before_checks is not None:
            before_checks(p, dbname)
        run_checks(ctx, target, p, dbname, manifest.series)
        marks["verified"] = time.monotonic()

    try:
        with server.admin(params) as conn:
            if server.database_exists(conn, name):
                raise RefusedError(
                    f"a database named {name!r} already exists and is not a leftover of an "
                    "earlier drill; rename it, the drill will not touch it"
                )
        with backup_hold(ctx.storage, manifest.engine, manifest.kind, manifest.series, manifest.id):
            checks, undecided = deep_check(ctx, source, name=name, after=then)
            checks += [f"undecided: {u}" for u in undecided]  # not a failure (ADR 0006)
    except SeawallError as exc:
        end = marks.get("restored", time.monotonic())
        target.steps.insert(0, Step("restore and statistics", end - t0, False, str(exc)))
        target.checks.insert(0, Check("restore and statistics", "failed", str(exc)))
        target.error = None  # the failed check says it
    else:
        restored = marks.get("restored", t0)
        target.steps.insert(0, Step("restore and statistics", restored - t0, True, ""))
        target.checks.insert(
            0, Check("restore and statistics", "passed", "; ".join(checks[-2:]) or "restored")
        )
        target.steps.append(
            Step("drop scratch database", time.monotonic() - marks.get("verified", t0), True, "")
        )
        if target.passed:
            target.rto_seconds = marks.get("verified", time.monotonic()) - t0
    target.finished_at = utcnow()
    return target


def _age(point: datetime, now: datetime) -> float:
    return max(0.0, (now - point).total_seconds())
