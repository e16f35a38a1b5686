"""``seawall postgres backup``: one logical backup per database.

Order of events, and why:

1. take the series lock (two overlapping CronJob runs must not collide);
2. connect with psycopg, open a REPEATABLE READ transaction and export its
   snapshot; sequence values and the large-object count are read in it, and
   ``pg_dump --snapshot`` then dumps exactly that snapshot;
3. stream ``pg_dump -Fc -Z0`` through the pipeline; per-table row counts and
   checksums are read off the stream as it goes by (``dumpscan``: no second
   scan in the server); pg_dump's exit status is checked *before* the
   artifact is renamed into place, so a dump that died half-way never
   becomes a complete-looking file;
4. store ``pg_dumpall --globals-only`` beside it, while the dump streams
   (roles and grants are not in a pg_dump archive);
5. write the manifest, last and atomically; the application layer then
   verifies (the result goes into the manifest) and applies retention
   (:mod:`seawall.app.backup`).

Steps 1 and 5, and the failure path, are the lifecycle every engine shares
(:func:`seawall.catalog.run.backup_run`): any failure removes what this run
stored, writes a *failed* manifest (for the exporter and alerts) and
re-raises with the error's exit code; earlier backups are never touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import subprocess
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import psycopg

from seawall import __version__
from seawall.catalog.models import (
    STATS_FORMAT,
    Artifact,
    ContentStats,
    Manifest,
    PostgresInfo,
    StreamCheck,
    TableStats,
    utcnow,
)
from seawall.catalog.naming import new_backup_id
from seawall.catalog.run import AfterBackup, backup_run
from seawall.catalog.runs import artifact_from_store
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.errors import SeawallError, SourceUnavailableError
from seawall.log import get_logger
from seawall.pipeline.store import PipelineSpec, store_stream
from seawall.postgres.logical import dblocale, dumpscan, server, stats
from seawall.postgres.tools.base import ConnParams
from seawall.postgres.tools.pg_dump import PgDump
from seawall.postgres.tools.pg_dumpall import PgDumpAll
from seawall.storage.base import storage_error

ENGINE: Final = "postgresql"
KIND = "logical"
DUMP_BASENAME = "dump.pgdump"
GLOBALS_BASENAME = "globals.sql"

log = get_logger("postgres.backup")


def backup_database(
    ctx: Context,
    database: str,
    *,
    progress: Callable[[int], None] | None = None,
    after: AfterBackup | None = None,
) -> Manifest:
    """Back up one database; returns the (successful) manifest or raises.

    ``after`` runs inside the series lock once the manifest is written (the
    application layer's verify and prune: :mod:`seawall.app.backup`).
    """
    s = ctx.settings
    params = ConnParams.from_settings(s)
    manifest = Manifest(
        id=new_backup_id(),
        engine=ENGINE,
        kind=KIND,
        series=database,
        target=params.describe(database),
        status="running",
        started_at=utcnow(),
        seawall_version=__version__,
        labels={"database": database, "type": "logical"},
    )

    def work(manifest: Manifest) -> None:
        try:
            _run(ctx, params, manifest, progress)
        except psycopg.Error as exc:
            raise server.sql_error(f"backup of {database}", exc) from None
        except OSError as exc:  # e.g. ENOSPC surfacing on close, outside the pipeline
            raise storage_error(exc, f"backup of {database}") from None

    return backup_run(
        ctx.catalog,
        ctx.storage,
        manifest,
        work,
        timeout=s.lock_timeout,
        command=f"seawall postgres backup --database {database}",
        after=after,
    )


def _run(
    ctx: Context, params: ConnParams, manifest: Manifest, progress: Callable[[int], None] | None
) -> None:
    s = ctx.settings
    database = manifest.series
    # The dump's own raw hash would be a third hash pass over every byte; the
    # stored sha256, age's MACs and zstd's frame checksum already cover it.
    spec: PipelineSpec = dataclasses.replace(ctx.spec, raw_hash=False, text_tuned=True)
    conn = server.connect(params, database)
    try:
        version_num = server.server_version_num(conn)
        major = version_num // 10000
        info = PostgresInfo(
            server_version=server.server_version(conn),
            server_version_num=version_num,
            database=database,
        )
        try:
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
            info.system_identifier = str(row[0]) if row else None
        except Exception:  # not allowed for non-superusers: informational only
            info.system_identifier = None
        dblocale.record(conn, info)
        manifest.postgres = info
        _estimate_size(conn, progress)
        dump = PgDump(server.tool_path(s, "pg_dump", major), params)

        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snapshot = str(row[0])
        # Sequences before pg_dump starts (they are not transactional: see stats).
        content = ContentStats(
            sequences=stats.sequences(conn),
            large_objects=stats.large_objects(conn),
            snapshot=snapshot,
            format=STATS_FORMAT,
        )
        proc = dump.spawn(database, snapshot)
        assert proc.stdout is not None
        scanner = dumpscan.DumpScanner()
        # Beside the dump: the exact row counts (count(*) in the exporting
        # transaction: cheap, index-only scans where the visibility map allows;
        # the checksums come from the dump stream) and the globals artifact
        # (pg_dumpall --globals-only is independent of the snapshot; choosing
        # its binary, running it and storing its output before or after the
        # dump would add to every backup's wall time).
        side = ThreadPoolExecutor(max_workers=2, thread_name_prefix="seawall-backup")
        counts = side.submit(stats.tables, conn, checksums=False)
        globals_job = side.submit(_store_globals, ctx, params, major, manifest, spec)
        # pg_dumpall failing (or its binary missing) fails the backup: stop the
        # dump now rather than after it has streamed the whole database.
        globals_job.add_done_callback(lambda job: _stop_if_failed(job, proc))
        dump_name = DUMP_BASENAME + spec.suffix()
        dump_key = artifact_key(manifest, dump_name)
        try:
            res = store_stream(
                proc.stdout,  # type: ignore[arg-type]
                ctx.storage,
                dump_key,
                spec,
                before_commit=lambda: PgDump.check(proc),
                progress=progress,
                tap=scanner.feed,
            )
        except BaseException as exc:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            # Do not wait for count(*) over every table to report the failure.
            with contextlib.suppress(Exception):
                conn.cancel()
            _join(side)
            _adopt_globals(globals_job, manifest, exc)
            raise
        # Recorded at once: from here on the failure path must remove it too.
        dump_art = artifact_from_store(dump_name, "dump", res, "application/x-pg-dump")
        dump_art.stream_check = _stream_check(scanner)
        manifest.artifacts.append(dump_art)
        if _join(side):
            _adopt_globals(globals_job, manifest, KeyboardInterrupt())
            raise KeyboardInterrupt
        globals_art, with_passwords, dumpall_version = globals_job.result()
        manifest.artifacts.append(globals_art)
        manifest.tool_versions = {"pg_dump": dump.version(), "pg_dumpall": dumpall_version}
        if not with_passwords:
            manifest.labels["globals"] = "no-role-passwords"
        try:
            table_counts = counts.result()
        except BaseException as exc:
            raise _stats_error(database, exc) from None
        content.tables, content.checksum_method = _with_checksums(
            conn, table_counts, scanner, database, ctx.settings.content_checksums
        )
        info.stats = content
        conn.execute("COMMIT")
    finally:
        conn.close()


def _stream_check(scanner: dumpscan.DumpScanner) -> StreamCheck | None:
    """The archive structure seen while the dump streamed, for identity-free
    verification; None if the scanner could not follow this archive (the
    backup never depends on it: pg_dump's exit status was checked)."""
    try:
        detail = scanner.structure()
    except dumpscan.ScanError as exc:
        log.info("dump structure not recorded: %s", exc)
        return None
    return StreamCheck(format="pg_dump custom archive", ok=True, detail=detail)


def _estimate_size(conn: stats.Conn, progress: Callable[[int], None] | None) -> None:
    """Give a progress bar the database's size on disk as a guess of the dump's size.

    pg_dump's output size is unknown until it ends; ``pg_database_size`` counts
    indexes and bloat the dump does not contain, so the bar may end early,
    which is why the bar says "estimate". Only asked for by bars that can show it.
    """
    estimate = getattr(progress, "estimate", None)
    if estimate is None:
        return
    try:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    except psycopg.Error:  # informational only
        return
    if row and row[0]:
        estimate(int(row[0]))


def _stop_if_failed(job: Future[Any], proc: subprocess.Popen[bytes]) -> None:
    """Kill pg_dump once ``job`` (the globals) has failed: the backup is lost anyway."""
    if not job.cancelled() and job.exception() is not None and proc.poll() is None:
        proc.kill()


def _join(side: ThreadPoolExecutor) -> bool:
    """Wait for the side jobs, also through Ctrl-C or SIGTERM; True if one came.

    Leaving while pg_dumpall's job still runs would let it commit the
    globals artifact (role password hashes) after the failure path has
    cleaned up. The wait is short: the count(*) query is cancelled on
    failure, and pg_dumpall takes tens of milliseconds.
    """
    interrupted = False
    while True:
        try:
            side.shutdown(wait=True)
            return interrupted
        except KeyboardInterrupt:
            interrupted = True


def _adopt_globals(
    job: Future[tuple[Artifact, bool, str]], manifest: Manifest, cause: BaseException
) -> None:
    """On a failed dump: put a stored globals artifact where the failure path
    removes it; if pg_dumpall failed, its error is the one to report (it
    stopped the dump, see ``_stop_if_failed``), unless the run was interrupted."""
    error = job.exception()
    if error is None:
        manifest.artifacts.append(job.result()[0])
        return
    if isinstance(cause, KeyboardInterrupt):
        return
    log.warning("pg_dumpall failed; the dump ended with: %s", cause)
    raise error from None


def _store_globals(
    ctx: Context, params: ConnParams, major: int, manifest: Manifest, spec: PipelineSpec
) -> tuple[Artifact, bool, str]:
    """``pg_dumpall --globals-only`` stored beside the dump.

    Returns the artifact, whether role passwords are in it, and the
    pg_dumpall version line (for the manifest).
    """
    dumpall = PgDumpAll(server.tool_path(ctx.settings, "pg_dumpall", major), params)
    script, with_passwords = dumpall.globals_only(manifest.series)
    name = GLOBALS_BASENAME + spec.suffix()
    res = store_stream(io.BytesIO(script), ctx.storage, artifact_key(manifest, name), spec)
    art = artifact_from_store(name, "globals", res, "application/sql")
    art.stream_check = _globals_check(script)
    return art, with_passwords, dumpall.version()


def _globals_check(script: bytes) -> StreamCheck | None:
    """pg_dumpall frames its script with a header and a "complete" trailer: both
    seen means the script was written whole (recorded for identity-free verify)."""
    head, tail = (
        b"-- PostgreSQL database cluster dump\n",
        b"-- PostgreSQL database cluster dump complete\n",
    )
    if head not in script[:200] or tail not in script[-200:]:
        return None
    return StreamCheck(
        format="pg_dumpall script",
        ok=True,
        detail=f"{len(script)} bytes from the cluster dump header to its 'complete' trailer",
    )


def _stats_error(database: str, exc: BaseException) -> SeawallError:
    text = str(exc).lower()
    cls = SourceUnavailableError if "connection" in text else SeawallError
    return cls(f"content statistics of {database} failed: {exc}")


def _with_checksums(
    conn: stats.Conn,
    counts: dict[str, TableStats],
    scanner: dumpscan.DumpScanner,
    database: str,
    checksums: bool,
) -> tuple[dict[str, TableStats], str | None]:
    """Row counts plus per-table checksums read off the dump stream.

    The stream scan costs no server work. If it could not read the archive,
    the exporting transaction is still open, so the SQL checksums are taken
    in the very snapshot pg_dump used (slower, same guarantees).
    """
    if not checksums:
        # No checksum, so no column order it would be defined in.
        return {name: TableStats(rows=t.rows) for name, t in counts.items()}, None
    try:
        sums = scanner.checksums()
    except dumpscan.ScanError as exc:
        log.warning(
            "checksums from the dump stream unavailable (%s); computing them with SQL "
            "in the dump's snapshot",
            exc,
        )
        try:
            return stats.tables(conn, checksums=True), None
        except psycopg.Error as err:
            raise _stats_error(database, err) from None
    missing = sorted(set(counts) - set(sums))
    if missing:
        # Every ordinary table has a TABLE DATA entry; a table without a
        # checksum would silently escape verify --deep's comparison.
        log.warning(
            "no checksum from the dump stream for %d table(s) (%s); computing them with SQL "
            "in the dump's snapshot",
            len(missing),
            ", ".join(missing[:3]),
        )
        try:
            return stats.tables(conn, checksums=True), None
        except psycopg.Error as err:
            raise _stats_error(database, err) from None
    # ``columns`` (from the catalog, in the dump's snapshot) is the column
    # list of pg_dump's COPY statement, the order the stream checksum is in.
    tables = {
        name: TableStats(rows=t.rows, checksum=sums[name], columns=t.columns)
        for name, t in counts.items()
    }
    return tables, dumpscan.METHOD
