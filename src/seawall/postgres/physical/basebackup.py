"""Physical base backups: ``pg_basebackup`` streamed through the pipeline.

One pass: pg_basebackup's tar (with the injected ``backup_manifest``) is
pulled through a tar scanner (structure check, and it keeps
``backup_label`` and ``backup_manifest``) into compress → encrypt → sha256 →
atomic file. The label gives the start LSN and timeline, the manifest's
``WAL-Ranges`` the end LSN, the server the system identifier and version.

The WAL a base backup needs to become consistent (start..stop segment) is
*not* in the tar (``-X none``); it reaches the archive through
``archive_command``. The backup waits (``wal_wait`` seconds) for the stop
segment to be archived so that a PITR right after it works, and says so in
the log if it did not arrive.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from seawall import __version__
from seawall.catalog.models import Manifest, PostgresInfo, StreamCheck, utcnow
from seawall.catalog.naming import new_backup_id
from seawall.catalog.run import AfterBackup, backup_run
from seawall.catalog.runs import artifact_from_store
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.errors import (
    BackupFailedError,
    RefusedError,
    SeawallError,
    SourceUnavailableError,
)
from seawall.log import get_logger
from seawall.pipeline.store import store_stream
from seawall.pipeline.tarscan import (
    ScanningReader,
    TarScanner,
    TarStructureError,
    parse_backup_label,
)
from seawall.postgres.tools.base import ConnParams, binary_version, tool_error
from seawall.postgres.tools.pg_basebackup import spawn_basebackup
from seawall.postgres.tools.pg_ctl import find_pg_binary as find_binary
from seawall.postgres.wal.fetch import find_wal
from seawall.walcore.lsn import format_lsn, lsn_to_segment_name, parse_lsn
from seawall.walcore.names import segment_range

ENGINE: Final = "postgresql"
KIND = "base"
ARTIFACT_ROLE = "base"

log = get_logger("postgres.basebackup")


@dataclass
class ServerFacts:
    version: str
    version_num: int
    system_identifier: str
    wal_segment_size: int
    archive_mode: str
    #: tablespaces besides pg_default/pg_global: (oid, name, location)
    tablespaces: list[tuple[int, str, str]]


def server_facts(conn: ConnParams) -> ServerFacts:
    """What the manifest needs from the server (psycopg is fine off the WAL path)."""
    import psycopg

    from seawall.postgres.sqlconn import open_connection

    try:
        with open_connection(conn.conninfo(), autocommit=False) as db:
            row = db.execute(
                "SELECT current_setting('server_version'), "
                "current_setting('server_version_num')::int, "
                "(SELECT system_identifier::text FROM pg_control_system()), "
                "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), "
                "current_setting('archive_mode')"
            ).fetchone()
            spaces = db.execute(
                "SELECT oid::int, spcname, pg_tablespace_location(oid) FROM pg_tablespace "
                "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1"
            ).fetchall()
    except psycopg.OperationalError as exc:
        raise tool_error("postgresql", 1, str(exc)) from exc
    if row is None:
        raise SourceUnavailableError("postgresql: the server returned nothing for its settings")
    return ServerFacts(
        str(row[0]), int(str(row[1])), str(row[2]), int(str(row[3])), str(row[4]),
        [(int(str(r[0])), str(r[1]), str(r[2])) for r in spaces],
    )  # fmt: skip


def next_xid(conn: ConnParams) -> int | None:
    """The next transaction id, recorded after the backup (picks a base for --target-xid)."""
    import psycopg

    from seawall.postgres.sqlconn import open_connection

    try:
        with open_connection(conn.conninfo(), autocommit=False) as db:
            row = db.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
    except psycopg.Error:
        return None
    return int(str(row[0])) if row else None


def wal_range(label: dict[str, str], manifest: dict[str, Any], seg_size: int) -> dict[str, Any]:
    """Start/stop LSN, timeline and WAL segment names from label + manifest."""
    start_field = label.get("START WAL LOCATION", "")
    start_lsn = parse_lsn(start_field.split()[0])
    timeline = int(label.get("START TIMELINE", "1"))
    ranges = manifest.get("WAL-Ranges") or []
    if not ranges:
        raise TarStructureError("backup_manifest has no WAL-Ranges")
    last = ranges[-1]
    stop_lsn = parse_lsn(str(last["End-LSN"]))
    stop_tl = int(last["Timeline"])
    return {
        "timeline": stop_tl if stop_tl else timeline,
        "start_lsn": format_lsn(start_lsn),
        "stop_lsn": format_lsn(stop_lsn),
        "start_wal": lsn_to_segment_name(start_lsn, timeline, seg_size),
        # a stop LSN on a segment boundary belongs to the previous segment
        "stop_wal": lsn_to_segment_name(max(stop_lsn - 1, start_lsn), stop_tl, seg_size),
    }


class StderrWatch:
    """Drain pg_basebackup's stderr in a thread and say why it may seem stuck.

    With ``-X none`` the server ends the backup only once its WAL is
    archived; if archive_command fails, pg_basebackup waits (the server says
    "still waiting for all required WAL segments to be archived"). That is
    surfaced as a warning naming the likely cause instead of a silent hang.
    Draining also keeps a chatty stderr from filling its pipe.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._lines: list[bytes] = []
        self._proc = proc
        self._thread = threading.Thread(
            target=self._drain, name="pg_basebackup-stderr", daemon=True
        )
        self._thread.start()

    def _drain(self) -> None:
        assert self._proc.stderr is not None
        for line in iter(self._proc.stderr.readline, b""):
            self._lines.append(line)
            if b"still waiting for all required WAL segments" in line:
                log.warning(
                    "pg_basebackup is waiting for the backup's WAL to be archived: check "
                    "archive_command and pg_stat_archiver on the server (%s)",
                    line.decode(errors="replace").strip()[:200],
                )

    def text(self) -> bytes:
        self._thread.join(timeout=5)
        return b"".join(self._lines[-50:])


def wait_for_wal(ctx: Context, cluster: str, names: list[str], timeout: float) -> list[str]:
    """Wait until ``names`` are archived; returns those still missing."""
    deadline = time.monotonic() + timeout
    missing = list(names)
    while True:
        still = []
        for name in missing:
            try:
                find_wal(ctx.storage, cluster, name)
            except SeawallError:
                still.append(name)
        missing = still
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.2)


def run_basebackup(
    ctx: Context,
    *,
    wal_wait: float = 60.0,
    fast_checkpoint: bool = True,
    progress: Any = None,
    after: AfterBackup | None = None,
) -> Manifest:
    """Take a base backup of the configured server; returns its manifest.

    ``after`` runs inside the series lock once the manifest is written (the
    application layer's verify and prune: :mod:`seawall.app.backup`).
    """
    s = ctx.settings
    cluster = s.pg_cluster_name
    conn = ConnParams.from_settings(ctx.settings)
    facts = server_facts(conn)
    if facts.archive_mode == "off":
        log.warning(
            "archive_mode is off on the server: a base backup without archived WAL cannot be "
            "restored; set archive_command = 'seawall postgres wal-push %p'"
        )
    from seawall.postgres.wal.archive_info import read_archive_info

    info = read_archive_info(ctx.storage, cluster)
    if info is not None and info.system_identifier != facts.system_identifier:
        raise RefusedError(
            f"the server {conn.describe()} has system identifier {facts.system_identifier} but "
            f"the WAL archive of PG_CLUSTER_NAME={cluster!r} belongs to "
            f"{info.system_identifier}; set PG_CLUSTER_NAME to this cluster's own name"
        )
    major = facts.version_num // 10000
    binary = find_binary("pg_basebackup", s.pg_bin_dir, min_major=major)
    manifest = Manifest(
        id=new_backup_id(),
        engine=ENGINE,
        kind=KIND,
        series=cluster,
        target=conn.describe(),
        status="running",
        started_at=utcnow(),
        tool_versions={"pg_basebackup": binary_version(binary)},
        seawall_version=__version__,
        postgres=PostgresInfo(
            server_version=facts.version,
            server_version_num=facts.version_num,
            system_identifier=facts.system_identifier,
            wal_segment_size=facts.wal_segment_size,
        ),
    )

    def work(manifest: Manifest) -> None:
        if facts.tablespaces:
            # pg_basebackup writes one tablespace only to stdout: the
            # replication protocol itself, one artifact per archive (ADR 0019);
            # refusals are said here, inside the run, so they are recorded
            from seawall.postgres.physical.basebackup_tblspc import store_with_tablespaces

            names = {oid: name for oid, name, _ in facts.tablespaces}
            label, pg_manifest = store_with_tablespaces(
                ctx, conn, manifest, names, fast_checkpoint, progress
            )
            manifest.tool_versions.pop("pg_basebackup", None)
            _record_range(manifest, label, pg_manifest)
        else:
            _store(ctx, binary, conn, manifest, fast_checkpoint, progress)
        pg = manifest.postgres
        assert pg is not None and pg.start_wal and pg.stop_wal
        manifest.labels["next_xid"] = str(next_xid(conn) or "")
        needed = list(segment_range(pg.start_wal, pg.stop_wal, facts.wal_segment_size))
        missing = wait_for_wal(ctx, cluster, needed, wal_wait) if wal_wait > 0 else needed
        if missing:
            log.warning(
                "base backup %s: WAL %s not archived yet; it is not restorable until it is "
                "(check archive_command)",
                manifest.id,
                ", ".join(missing),
            )
            manifest.labels["wal_pending"] = ",".join(missing)

    def reraise(exc: BaseException) -> BaseException | None:
        # the manifest keeps the error as it was; the command says what failed
        if isinstance(exc, (SeawallError, TarStructureError, OSError, ValueError)):
            return BackupFailedError(f"base backup of {cluster} failed: {exc}")
        return None

    return backup_run(
        ctx.catalog,
        ctx.storage,
        manifest,
        work,
        timeout=s.lock_timeout,
        command="basebackup",
        after=after,
        reraise=reraise,
    )


def _store(
    ctx: Context,
    binary: Path,
    conn: ConnParams,
    manifest: Manifest,
    fast_checkpoint: bool,
    progress: Any,
) -> None:
    """Stream pg_basebackup's tar into the catalog; record its artifact and WAL range."""
    pg = manifest.postgres
    assert pg is not None and pg.wal_segment_size
    spec = ctx.spec
    name = "base.tar" + spec.suffix()
    proc = spawn_basebackup(binary, conn, f"seawall {manifest.id}", fast_checkpoint=fast_checkpoint)
    scanner = TarScanner()
    assert proc.stdout is not None
    stderr = StderrWatch(proc)

    def before_commit() -> None:
        rc = proc.wait()
        err = stderr.text()
        if rc != 0:
            raise tool_error("pg_basebackup", rc, err)
        scanner.finish()
        if "backup_label" not in scanner.captured or "backup_manifest" not in scanner.captured:
            raise TarStructureError("pg_basebackup's tar has no backup_label/backup_manifest")

    try:
        result = store_stream(
            ScanningReader(proc.stdout, scanner),  # type: ignore[arg-type]
            ctx.storage,
            artifact_key(manifest, name),
            spec,
            before_commit=before_commit,
            progress=progress,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    art = artifact_from_store(name, ARTIFACT_ROLE, result, "application/x-tar")
    # before_commit refused anything else: recorded for identity-free verification
    art.stream_check = StreamCheck(
        format="tar",
        ok=True,
        detail=f"{scanner.members} members read header by header (checksums ok) to the "
        "end-of-archive marker; backup_label and backup_manifest present",
    )
    # Recorded at once: from here on the failure path must remove it too.
    manifest.artifacts = [art]
    label = parse_backup_label(scanner.captured["backup_label"].decode(errors="replace"))
    _record_range(manifest, label, json.loads(scanner.captured["backup_manifest"]))


def _record_range(manifest: Manifest, label: dict[str, str], pg_manifest: dict[str, Any]) -> None:
    """The WAL range and start time from backup_label and backup_manifest."""
    pg = manifest.postgres
    assert pg is not None and pg.wal_segment_size
    rng = wal_range(label, pg_manifest, pg.wal_segment_size)
    pg.timeline = rng["timeline"]
    pg.start_lsn = rng["start_lsn"]
    pg.stop_lsn = rng["stop_lsn"]
    pg.start_wal = rng["start_wal"]
    pg.stop_wal = rng["stop_wal"]
    manifest.labels["backup_label_start_time"] = label.get("START TIME", "")


def base_manifests(ctx: Context, cluster: str) -> list[Manifest]:
    """Successful base backups of a cluster, oldest first."""
    scan = ctx.catalog.scan(ENGINE, KIND, cluster)
    return sorted((m for m in scan.manifests if m.ok and m.postgres), key=lambda m: m.time)


def scratch_dir_for(ctx: Context) -> Path:
    return Path("/tmp")
