"""The PITR part of ``seawall drill``: base backup + WAL into a throwaway server.

The newest base backup whose WAL is in the archive is restored to the end
of the archived WAL (``pitr-restore --latest``'s own plan and code) into a
scratch data directory ``$TMPDIR/seawall_drill_<drill id>_pitr/data``,
started on a free loopback port (listening on 127.0.0.1 only, archiving
off: it can never write into the production archive), and checked:

- *recovery*: the server reached the end of the archived WAL and was
  promoted;
- *amcheck*: ``bt_index_check`` on every B-tree index of every database;
- *smoke query*: ``DRILL_SMOKE_QUERY`` in ``DRILL_SMOKE_DATABASE`` (else
  ``DB_NAME``).

Base backups record no content statistics, so there is none to compare
here (the logical drill does that). The server is stopped and the
directory removed whatever happened; after a kill -9 the next drill finds
the directory by its name, stops the server still running on it, and
removes it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from seawall.catalog.models import Manifest, utcnow
from seawall.context import Context
from seawall.drill.model import TargetResult
from seawall.errors import RefusedError, SeawallError
from seawall.log import get_logger
from seawall.ports import free_loopback_port
from seawall.postgres.drill import (
    BeforeChecks,
    check_indexes,
    is_leftover,
    scratch_key,
    smoke,
)
from seawall.postgres.logical import server
from seawall.postgres.tools import pg_ctl
from seawall.postgres.tools.base import ConnParams

log = get_logger("postgres.drill")


def scratch_root(drill_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"seawall_drill_{scratch_key(drill_id)}_pitr"


def _stop_and_remove(ctx: Context, root: Path) -> None:
    data = root / "data"
    if (data / "postmaster.pid").exists():
        try:
            ctl = pg_ctl.find_pg_binary("pg_ctl", ctx.settings.pg_bin_dir)
            pg_ctl.stop(ctl, data, "immediate")
        except SeawallError as exc:
            log.error("could not stop the drill server on %s: %s", data, exc)
    shutil.rmtree(root, ignore_errors=True)


def remove_leftovers(ctx: Context, drill_id: str) -> list[str]:
    """Stop the servers and remove the data directories earlier drills left behind."""
    removed: list[str] = []
    base = Path(tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in sorted(entries):
        if entry.is_dir() and is_leftover(entry.name, drill_id):
            _stop_and_remove(ctx, entry)
            log.warning("removed the PITR scratch directory of an earlier drill: %s", entry)
            removed.append(f"postgresql data directory {entry}")
    return removed


def _databases(params: ConnParams) -> list[str]:
    with server.admin(params) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _checks(
    ctx: Context, target: TargetResult, params: ConnParams, before_checks: BeforeChecks | None
) -> None:
    databases = _databases(params)
    if before_checks is not None:
        for db in databases:
            before_checks(params, db)
    check_indexes(target, params, databases, name_databases=True)
    s = ctx.settings
    if s.drill_smoke_query is None:
        target.check("smoke query", "skipped", "DRILL_SMOKE_QUERY is not set")
        return
    db = s.drill_smoke_database or s.db_name
    try:
        with target.step("smoke query"):
            ok, detail = smoke(ctx, params, db)
    except SeawallError as exc:
        ok, detail = False, str(exc)
    target.check("smoke query", "passed" if ok else "failed", f"in {db}: {detail}")


def drill_pitr(
    ctx: Context,
    drill_id: str,
    *,
    before_checks: BeforeChecks | None = None,
) -> TargetResult:
    """Restore the newest base backup + WAL into a throwaway server, check it, remove it."""
    from seawall.postgres.physical.pitr import execute_restore, plan_restore
    from seawall.postgres.physical.pitr_plan import make_target

    cluster = ctx.settings.pg_cluster_name
    root = scratch_root(drill_id)
    target = TargetResult("postgresql", "pitr", cluster, scratch=str(root / "data"))
    target.started_at = utcnow()
    t0 = time.monotonic()
    base: Manifest | None = None
    try:
        if root.exists():
            raise RefusedError(
                f"{root} already exists and is not a leftover of an earlier drill; "
                "remove it, the drill will not touch it"
            )
        with target.step("plan") as step:
            plan = plan_restore(ctx, make_target(latest=True))
            step.detail = plan.window
        base = plan.base
        target.backup_id = base.id
        target.recovered_to = plan.reach.end_time or base.time
        target.rpo_seconds = max(0.0, (target.started_at - target.recovered_to).total_seconds())
        root.mkdir(mode=0o711)
        port = free_loopback_port()
        try:
            with target.step("restore and recovery") as step:
                # never the source's own tablespace directories: the drill's
                # server may run on the same host as the source
                spaces = (base.postgres.tablespaces if base.postgres else None) or []
                res = execute_restore(
                    ctx,
                    plan,
                    root / "data",
                    port=port,
                    start=True,
                    action="promote",
                    tablespace_mapping={
                        t.location: root / "tablespaces" / str(t.oid) for t in spaces
                    },
                )
                step.detail = f"{res.state} on 127.0.0.1:{port}"
        except SeawallError as exc:
            target.check("recovery", "failed", str(exc))
            return target
        target.check(
            "recovery",
            "passed",
            f"base backup {base.id} + WAL replayed to {target.recovered_to.isoformat()}, "
            f"{res.state}",
        )
        params = ConnParams(
            host="127.0.0.1",
            port=port,
            user=ctx.settings.db_user,
            dbname="postgres",
            password=(
                ctx.settings.db_password.get_secret_value() if ctx.settings.db_password else None
            ),
            passfile=ctx.settings.pgpassfile,
        )
        _checks(ctx, target, params, before_checks)
        if target.passed:
            target.rto_seconds = time.monotonic() - t0
    except SeawallError as exc:
        target.error = str(exc)
    finally:
        if root.exists():
            with target.step("stop server, remove data directory"):
                data = root / "data"
                if (data / "postmaster.pid").exists():
                    major = (
                        base.postgres.server_version_num // 10000
                        if base is not None and base.postgres and base.postgres.server_version_num
                        else None
                    )
                    try:
                        ctl = pg_ctl.find_pg_binary(
                            "pg_ctl", ctx.settings.pg_bin_dir, min_major=major
                        )
                        pg_ctl.stop(ctl, data, "immediate")
                    except SeawallError as exc:
                        log.error("could not stop the drill server on %s: %s", data, exc)
                shutil.rmtree(root, ignore_errors=True)
        target.finished_at = utcnow()
    return target
