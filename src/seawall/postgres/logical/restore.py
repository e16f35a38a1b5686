"""``seawall postgres restore``: into a new database, or over one with --clean.

Never a half-restored database under the target name: the dump is restored
into a temporary database, and only a complete restore is renamed into
place. Over an existing database (``--clean``) the old one is renamed
aside, the new one renamed in, then the old one dropped; if the second
rename fails the old one is renamed back.

``pg_restore -j`` needs a seekable file, so a custom-format archive is first
decoded into a scratch directory (``TMPDIR``, default /tmp; it needs room
for the uncompressed dump) which is always removed afterwards. The dump of
a backup with a manifest is decoded while it is downloaded and hashed, into
a hidden file there that gets its name only once the sha256 matched (ADR
0016, addendum): no spool, one read. A plain SQL dump without a manifest
(the operators' old ``*.sql.gz``) streams straight into psql.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from seawall.context import Context
from seawall.errors import (
    ConfigError,
    NotFoundError,
    RefusedError,
    SeawallError,
    StorageError,
    VerificationError,
)
from seawall.log import get_logger
from seawall.pipeline.decode import decode_to, sniff_encryption
from seawall.pipeline.spool import spool_dir
from seawall.pipeline.staged import StagedFile
from seawall.postgres.logical import dblocale, server
from seawall.postgres.logical.dumpscan import archive_tablespaces
from seawall.postgres.logical.select import BackupSource
from seawall.postgres.logical.stats import Conn
from seawall.postgres.logical.verify import PGDMP_MAGIC, _dump_major
from seawall.postgres.tools.base import ConnParams
from seawall.postgres.tools.pg_restore import PgRestore
from seawall.postgres.tools.psql import Psql, PsqlScript

log = get_logger("postgres.restore")


@dataclass
class RestoreResult:
    target_db: str
    replaced: bool
    format: str  # custom | plain
    globals_restored: bool
    pg_restore: str | None
    notes: list[str] = field(default_factory=list)


def _temp_name(target: str, tag: str) -> str:
    return f"{target[:40]}_seawall_{tag}_{secrets.token_hex(3)}"


def effective_jobs(toc: str, requested: int) -> int:
    """No more workers than tables with data.

    Extra workers cannot split one table's COPY and only compete for the
    CPU with index builds: on a 2-core machine a one-table database
    restored 2.4x slower with ``-j 2`` than with ``-j 1``.
    """
    tables = sum(1 for ln in toc.splitlines() if " TABLE DATA " in ln and not ln.startswith(";"))
    return max(1, min(requested, tables))


def filter_globals(script: str, current_user: str) -> str:
    """Drop the statements that would redefine the role we are connected as.

    Restoring the source's superuser definition (password included) over the
    target's would lock the operator out of the cluster they restore into.
    """
    bare = re.escape(current_user)
    # pg_dumpall quotes a name as an SQL identifier: inside quotes, a double
    # quote is written twice ("Ops ""DR"" admin")
    quoted = re.escape('"' + current_user.replace('"', '""') + '"')
    pat = re.compile(rf"^(CREATE|ALTER) ROLE ({quoted}|{bare})( |;)")
    return "\n".join(ln for ln in script.splitlines() if not pat.match(ln)) + "\n"


def restore_globals(ctx: Context, source: BackupSource, workdir: Path, major: int) -> list[str]:
    """Replay the stored globals (roles, memberships) on the target server."""
    m = source.manifest
    art = m.artifact("globals") if m is not None else None
    if art is None:
        raise ConfigError(f"{source.label} has no globals artifact; run without --with-globals")
    chunks: list[bytes] = []

    class _Collect:
        def write(self, data: bytes) -> int:
            chunks.append(data)
            return len(data)

    decode_to(
        source.storage,
        source.key(art.name),
        _Collect(),
        ctx.keys,
        expected_sha256=art.sha256,
        expected_size=art.stored_size,
        compression=art.compression,
    )
    params = ConnParams.from_settings(ctx.settings)
    path = workdir / "globals.sql"
    # surrogateescape: role names of a SQL_ASCII cluster may be any bytes
    script = filter_globals(b"".join(chunks).decode("utf-8", "surrogateescape"), params.user)
    path.write_bytes(script.encode("utf-8", "surrogateescape"))
    psql = Psql(server.tool_path(ctx.settings, "psql", major), params)
    stderr = psql.run_file(path, server.maintenance_db(), stop_on_error=False)
    notes = [ln for ln in stderr.splitlines() if "ERROR" in ln]
    for ln in notes:
        log.warning("globals: %s", ln)
    return notes


class _SwitchSink:
    """Decoded bytes go to a file (a custom archive: pg_restore -j needs to
    seek) or, for a plain SQL dump, straight into psql without touching disk."""

    def __init__(self, path: Path, start_psql: Callable[[], PsqlScript]) -> None:
        self.path = path
        self._start_psql = start_psql
        self._head = b""
        self.file: BinaryIO | None = None
        self.psql: PsqlScript | None = None

    @property
    def is_archive(self) -> bool:
        return self.file is not None

    def _decide(self) -> None:
        if self._head.startswith(PGDMP_MAGIC):
            self.file = open(self.path, "wb")  # noqa: SIM115 - closed in finish()/abort()
        else:
            self.psql = self._start_psql()
        data, self._head = self._head, b""
        self._forward(data)

    def _forward(self, data: bytes) -> None:
        if self.file is not None:
            self.file.write(data)
        elif self.psql is not None and data:
            self.psql.write(data)

    def write(self, data: bytes) -> int:
        if self.file is None and self.psql is None:
            self._head += data
            if len(self._head) >= len(PGDMP_MAGIC):
                self._decide()
        else:
            self._forward(data)
        return len(data)

    def finish(self) -> None:
        if self.file is None and self.psql is None:
            self._decide()
        if self.file is not None:
            self.file.close()
        if self.psql is not None:
            self.psql.finish()

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.psql is not None:
            self.psql.kill()


class _NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def _decode_into(
    ctx: Context,
    source: BackupSource,
    sink: _SwitchSink,
    progress: Callable[[int], None] | None,
) -> None:
    """Decode a foreign dump (no manifest: the operators' old files) into ``sink``."""
    assert source.foreign_key is not None
    with source.storage.open_read(source.foreign_key) as fh:
        head = fh.read(16)
    if sniff_encryption(head) == "openssl":
        # Legacy `openssl enc` (CBC) has no MAC: a wrong key is only noticed
        # at the last block (padding) or by the gzip CRC, after garbage has
        # been streamed. Decode once to nowhere first, so nothing unchecked
        # ever reaches psql.
        decode_to(source.storage, source.foreign_key, _NullSink(), ctx.keys)
    decode_to(source.storage, source.foreign_key, sink, ctx.keys, progress=progress)


def _decode_checked(
    ctx: Context, source: BackupSource, dest: Path, progress: Callable[[int], None] | None
) -> Path:
    """Decode the dump of a backup with a manifest to ``dest`` (ADR 0016, addendum).

    Decoded while it is downloaded and hashed, into a hidden file beside
    ``dest`` that is renamed to ``dest`` only once the stored sha256 (and the
    raw sha256, when the manifest has one) matched: pg_restore or psql never
    see a byte of a corrupt artifact, and the object is read once, with no
    spool of the encoded bytes.
    """
    assert source.manifest is not None
    art = source.manifest.artifact("dump")
    if art is None:
        raise VerificationError(f"{source.label}: the manifest lists no dump artifact")
    key = source.key(art.name)
    if not source.storage.exists(key):
        raise NotFoundError(
            f"{source.label}: artifact {art.name} is missing; the backup is incomplete"
        )
    with StagedFile(dest, art.raw_size, raw_hash=bool(art.raw_sha256)) as staged:
        decode_to(
            source.storage, key, staged, ctx.keys,
            expected_sha256=art.sha256, expected_size=art.stored_size,
            compression=art.compression, progress=progress,
        )  # fmt: skip
        if staged.raw_hash is not None and staged.raw_hash.hexdigest() != art.raw_sha256:
            raise VerificationError(
                f"{source.label}: dump decodes to different bytes than were dumped"
            )
        return staged.commit()


def _psql_from_file(psql: PsqlScript, path: Path) -> None:
    """Stream a checked plain SQL dump into psql."""
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                psql.write(chunk)
        psql.finish()
    except BaseException:
        psql.kill()
        raise


def _scratch_dir() -> Path:
    """A private directory in ``TMPDIR`` itself for the decoded dump.

    Not ``tempfile.mkdtemp()`` alone: when ``TMPDIR`` cannot take a test file
    (full, read-only) Python silently falls back to /tmp, and the dump would
    land on a disk the operator did not choose.
    """
    where = spool_dir()
    try:
        return Path(tempfile.mkdtemp(prefix="seawall-restore-", dir=where))
    except OSError as exc:
        raise StorageError(
            f"cannot create scratch space for the restore in {where} ({exc.strerror}); "
            "set TMPDIR to a writable directory with room for the decoded dump"
        ) from exc


def restore(
    ctx: Context,
    source: BackupSource,
    target_db: str,
    *,
    clean: bool = False,
    jobs: int | None = None,
    with_globals: bool = False,
    no_owner: bool = False,
    no_tablespaces: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RestoreResult:
    if not target_db or len(target_db) > 63:
        raise ConfigError("--target-db must be a database name of 1 to 63 characters")
    params = ConnParams.from_settings(ctx.settings)
    jobs = jobs or ctx.settings.restore_jobs
    with server.admin(params, avoid=target_db) as conn:
        exists = server.database_exists(conn, target_db)
        if exists and not clean:
            raise RefusedError(
                f"database {target_db!r} exists; restore into a new name, or pass --clean "
                "to replace it (the old one is dropped only after the restore succeeded)"
            )
        version_num = server.server_version_num(conn)
        major = version_num // 10000
    workdir = _scratch_dir()
    try:
        notes: list[str] = []
        if with_globals:
            notes += restore_globals(ctx, source, workdir, major)
        tmp = _temp_name(target_db, "new")
        tool_version: str | None = None
        psql = Psql(server.tool_path(ctx.settings, "psql", major), params)
        with server.admin(params, avoid=target_db) as conn:
            info = source.manifest.postgres if source.manifest is not None else None
            dblocale.create_like(conn, tmp, info, version_num)
            try:
                if source.manifest is not None:
                    dump = _decode_checked(ctx, source, workdir / "dump", progress)
                    with open(dump, "rb") as fh:
                        is_archive = fh.read(len(PGDMP_MAGIC)) == PGDMP_MAGIC
                    if not is_archive:
                        _psql_from_file(psql.spawn_script(tmp), dump)
                else:
                    sink = _SwitchSink(workdir / "dump", lambda: psql.spawn_script(tmp))
                    try:
                        _decode_into(ctx, source, sink, progress)
                        sink.finish()
                    except BaseException:
                        sink.abort()
                        raise
                    dump, is_archive = sink.path, sink.is_archive
                if is_archive:
                    pg_restore = PgRestore(
                        server.tool_path(
                            ctx.settings,
                            "pg_restore",
                            max(major, _dump_major(source.manifest) or 0),
                        ),
                        params,
                    )
                    tool_version = pg_restore.version()
                    if not no_tablespaces:
                        check_tablespaces(conn, dump)
                    jobs = effective_jobs(pg_restore.list_file(dump), jobs)
                    pg_restore.restore(
                        dump, tmp, jobs=jobs, no_owner=no_owner, no_tablespaces=no_tablespaces
                    )
                _swap(conn, tmp, target_db, replace=exists)
            except BaseException:
                try:
                    server.drop_database(conn, tmp)
                except Exception as exc:
                    log.error("could not drop temporary database %s: %s", tmp, exc)
                raise
        return RestoreResult(
            target_db=target_db,
            replaced=exists,
            format="custom" if is_archive else "plain",
            globals_restored=with_globals,
            pg_restore=tool_version,
            notes=notes,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_tablespaces(conn: Conn, archive: Path) -> None:
    """Refuse, naming them, tablespaces the dump uses and the target lacks.

    pg_restore would otherwise stop at its first ``SET default_tablespace``
    with a server error, after the decode. A fresh cluster (the usual
    disaster recovery target) has no tablespaces, and silently moving
    everything into the default one could fill the wrong disk: the operator
    decides (create them, or ``--no-tablespaces``).
    """
    with open(archive, "rb") as fh:
        wanted = archive_tablespaces(fh)
    if not wanted:
        return
    have = {str(r[0]) for r in conn.execute("SELECT spcname FROM pg_tablespace").fetchall()}
    missing = sorted(wanted - have)
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise RefusedError(
            f"the backup puts objects in tablespace(s) {names} that the target server lacks; "
            "create them there first (CREATE TABLESPACE … LOCATION …; --with-globals does it "
            "where their directories exist and are empty), or pass --no-tablespaces to create "
            "everything in the default tablespace"
        )


def _swap(conn: Conn, tmp: str, target: str, *, replace: bool) -> None:
    """Rename the complete restore into place (moving an existing target aside)."""
    if not replace:
        server.rename_database(conn, tmp, target)
        return
    old = _temp_name(target, "old")
    server.terminate_sessions(conn, target)
    try:
        server.rename_database(conn, target, old)
    except SeawallError as exc:
        raise RefusedError(f"{exc}; close the sessions on {target!r} and retry") from None
    try:
        server.rename_database(conn, tmp, target)
    except SeawallError:
        server.rename_database(conn, old, target)
        raise
    try:
        server.drop_database(conn, old)
    except SeawallError as exc:
        log.warning("restored; the previous database is kept as %s (%s)", old, exc)
