"""``seawall postgres restore``: into a new database, or over one with --clean.

Never a half-restored database under the target name: the dump is restored
into a temporary database, and only a complete restore is renamed into
place. Over an existing database (``--clean``) the old one is renamed
aside, the new one renamed in, then the old one dropped; if the second
rename fails the old one is renamed back.

``pg_restore -j`` needs a seekable file, so the artifact is first decoded
into a scratch directory (``TMPDIR``, default /tmp; it needs room for the
uncompressed dump) which is always removed afterwards.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from seawall.context import Context
from seawall.errors import ConfigError, RefusedError, SeawallError
from seawall.log import get_logger
from seawall.pipeline.stream import decode_to
from seawall.postgres.logical import server
from seawall.postgres.logical.legacy import restore_plain_sql
from seawall.postgres.logical.select import BackupSource
from seawall.postgres.logical.stats import Conn
from seawall.postgres.logical.verify import _dump_major, decode_dump_to_file
from seawall.postgres.tools.pg_restore import PgRestore
from seawall.postgres.tools.psql import Psql

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


def filter_globals(script: str, current_user: str) -> str:
    """Drop the statements that would redefine the role we are connected as.

    Restoring the source's superuser definition (password included) over the
    target's would lock the operator out of the cluster they restore into.
    """
    quoted = re.escape(current_user)
    pat = re.compile(rf'^(CREATE|ALTER) ROLE ("{quoted}"|{quoted})( |;)')
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
        source.storage, source.key(art.name), _Collect(), ctx.keys,
        expected_sha256=art.sha256, compression=art.compression,
    )
    params = server.conn_params(ctx.settings)
    path = workdir / "globals.sql"
    path.write_text(filter_globals(b"".join(chunks).decode(), params.user))
    psql = Psql(server.tool_path(ctx.settings, "psql", major), params)
    stderr = psql.run_file(path, params.dbname, stop_on_error=False)
    notes = [ln for ln in stderr.splitlines() if "ERROR" in ln]
    for ln in notes:
        log.warning("globals: %s", ln)
    return notes


def restore(
    ctx: Context,
    source: BackupSource,
    target_db: str,
    *,
    clean: bool = False,
    jobs: int | None = None,
    with_globals: bool = False,
    no_owner: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RestoreResult:
    if not target_db or len(target_db) > 63:
        raise ConfigError("--target-db must be a database name of 1 to 63 characters")
    params = server.conn_params(ctx.settings)
    jobs = jobs or ctx.settings.restore_jobs
    with server.admin(params, avoid=target_db) as conn:
        exists = server.database_exists(conn, target_db)
        if exists and not clean:
            raise RefusedError(
                f"database {target_db!r} exists; restore into a new name, or pass --clean "
                "to replace it (the old one is dropped only after the restore succeeded)"
            )
        major = server.server_version_num(conn) // 10000
    workdir = Path(tempfile.mkdtemp(prefix="seawall-restore-"))
    try:
        path, is_archive = decode_dump_to_file(ctx, source, workdir, progress)
        notes: list[str] = []
        if with_globals:
            notes += restore_globals(ctx, source, workdir, major)
        tmp = _temp_name(target_db, "new")
        tool_version: str | None = None
        with server.admin(params, avoid=target_db) as conn:
            server.create_database(conn, tmp)
            try:
                if is_archive:
                    pg_restore = PgRestore(
                        server.tool_path(
                            ctx.settings, "pg_restore", max(major, _dump_major(source.manifest) or 0)
                        ),
                        params,
                    )
                    tool_version = pg_restore.version()
                    pg_restore.restore(path, tmp, jobs=jobs, no_owner=no_owner)
                else:
                    restore_plain_sql(ctx, path, tmp, major)
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


def _swap(conn: Conn, tmp: str, target: str, *, replace: bool) -> None:
    if not replace:
        try:
            server.rename_database(conn, tmp, target)
        except Exception as exc:
            raise SeawallError(f"cannot rename restored database into {target!r}: {exc}") from exc
        return
    old = _temp_name(target, "old")
    server.terminate_sessions(conn, target)
    try:
        server.rename_database(conn, target, old)
    except Exception as exc:
        raise RefusedError(
            f"cannot move the existing {target!r} aside ({exc}); close its sessions and retry"
        ) from exc
    try:
        server.rename_database(conn, tmp, target)
    except Exception as exc:
        server.rename_database(conn, old, target)
        raise SeawallError(f"cannot rename restored database into {target!r}: {exc}") from exc
    try:
        server.drop_database(conn, old)
    except Exception as exc:
        log.warning("restored; the previous database is kept as %s (drop failed: %s)", old, exc)
