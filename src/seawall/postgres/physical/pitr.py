"""Point-in-time recovery: base backup + archived WAL up to a target.

Steps, and why each is there:

1. **Plan** (no side effects): read the base backup manifests, the archive
   listing and its history files; :mod:`seawall.postgres.physical.pitr_plan`
   (pure) picks the base backup and refuses up front a target the WAL
   cannot reach, naming the recoverable window.
2. **Unpack** the base backup into an empty data directory owned by the
   ``postgres`` user, mode 0700 (``tar`` through
   :mod:`seawall.postgres.tools.tar`), and each tablespace into its original
   or mapped directory, all of them checked empty first
   (:mod:`seawall.postgres.physical.tblspc_restore`).
3. **Configure recovery** (:mod:`seawall.postgres.physical.pitr_recovery`):
   ``recovery.signal``, the restore_command wrapper script and the lines
   appended to ``postgresql.auto.conf``.
4. With ``--start``: start it (as the data dir's owner) and wait until the
   target is reached; PostgreSQL's own reason is shown if it refuses.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from seawall.catalog.models import Manifest
from seawall.context import Context
from seawall.errors import (
    ConfigError,
    NotFoundError,
    RefusedError,
    SeawallError,
    StorageError,
)
from seawall.log import get_logger
from seawall.postgres.physical.basebackup import base_manifests
from seawall.postgres.physical.pitr_plan import (
    RestorePlan,
    Target,
    base_ref,
    choose_plan,
    prefetch_names,
    wal_segment_size,
)
from seawall.postgres.physical.pitr_recovery import (
    Action,
    recovery_settings,
    repository_for_children,
    write_wrapper,
)
from seawall.postgres.physical.prefetch import (
    DEFAULT_AHEAD,
    Prefetcher,
    PrefetchStats,
    make_spool,
)
from seawall.postgres.physical.tblspc_restore import (
    Placement,
    plan_placements,
    remove_placements,
    unpack_artifact,
    unpack_tablespaces,
    write_tablespace_map,
)
from seawall.postgres.tools import pg_ctl
from seawall.postgres.tools.pg_controldata import controldata
from seawall.postgres.tools.pg_ctl import find_pg_binary as find_binary
from seawall.postgres.wal.archive import ArchiveListing, list_archive, load_histories
from seawall.storage.base import Storage
from seawall.storage.mirror import copies_of

log = get_logger("postgres.pitr")


def plan_restore(
    ctx: Context,
    target: Target,
    *,
    base_id: str | None = None,
    timeline: int | None = None,
    now: datetime | None = None,
) -> RestorePlan:
    """Read what the plan needs (base backups, the archive and its history
    files) and plan the restore (:func:`~seawall.postgres.physical.pitr_plan.choose_plan`)."""
    cluster = ctx.settings.pg_cluster_name
    bases = [m for m in base_manifests(ctx, cluster) if base_ref(m) is not None]
    if not bases:
        raise NotFoundError(
            f"no successful base backup of cluster {cluster!r} in {ctx.storage.describe()}; "
            "run `seawall postgres basebackup` (and check PG_CLUSTER_NAME)"
        )
    listing = _archive_with_mirrors(ctx.storage, cluster, wal_segment_size(bases))
    load_histories(listing, ctx.storage, ctx.keys)
    return choose_plan(
        target,
        bases,
        listing,
        cluster=cluster,
        now=now or datetime.now(UTC),
        base_id=base_id,
        timeline=timeline,
    )


def _archive_with_mirrors(storage: Storage, cluster: str, segment_size: int) -> ArchiveListing:
    """The primary's WAL archive plus the files only a mirror still holds.

    Why: recovery's wal-fetch reads a file the primary lost from a mirror
    (MIRRORS reach restore_command), so a file the primary lacks is no gap
    when a mirror has it; planning from the primary alone refused ``--latest``
    "at a gap" the restore would have replayed. A mirror that cannot be
    listed is skipped (the primary's gaps stand), with a warning.
    """
    copies = copies_of(storage)
    listing = list_archive(copies[0][1], cluster, segment_size)
    known = {f.name for f in listing.files}
    for label, repo in copies[1:]:
        try:
            other = list_archive(repo, cluster, segment_size)
        except StorageError as exc:
            log.warning("WAL archive of %s not listed: %s", label, exc)
            continue
        extra = [f for f in other.files if f.name not in known]
        for f in extra:
            log.warning("%s: missing in the primary, %s holds it", f.name, label)
        listing.files.extend(extra)
        known.update(f.name for f in extra)
    listing.files.sort(key=lambda f: (f.timeline, f.segno or -1, f.name))
    return listing


# --- executing a plan ------------------------------------------------------------


@dataclass
class RestoreResult:
    data_dir: Path
    base_id: str
    target: str
    port: int
    started: bool
    state: str
    log_file: Path
    sidecar: Path
    recovery_conf: dict[str, str] = field(default_factory=dict)
    prefetch: PrefetchStats | None = None


def _owner() -> tuple[int, int]:
    """The user the server runs as: ``postgres`` when we are root, else us."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise ConfigError(
            "running as root but there is no postgres user to own the restored data dir; "
            "run pitr-restore as the user PostgreSQL runs as"
        ) from None
    return pw.pw_uid, pw.pw_gid


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def _prepare_data_dir(data_dir: Path, uid: int, gid: int) -> None:
    if data_dir.exists():
        if not data_dir.is_dir():
            raise RefusedError(f"{data_dir} exists and is not a directory; give an empty directory")
        if any(data_dir.iterdir()):
            raise RefusedError(
                f"{data_dir} is not empty; pitr-restore never writes over existing data: "
                "give a new or empty --data-dir"
            )
    else:
        data_dir.mkdir(parents=True)
    os.chmod(data_dir, 0o700)
    if os.geteuid() == 0:
        os.chown(data_dir, uid, gid)


def _unpack(ctx: Context, base: Manifest, data_dir: Path) -> None:
    art = base.artifact("base")
    if art is None:
        raise NotFoundError(f"base backup {base.id} has no base artifact")
    unpack_artifact(ctx, base, art, data_dir, f"base backup {base.id}")


def execute_restore(
    ctx: Context,
    plan: RestorePlan,
    data_dir: Path,
    *,
    port: int = 5433,
    action: Action = "promote",
    timeline: int | None = None,
    start: bool = False,
    listen_addresses: str = "127.0.0.1",
    wait_timeout: float = 3600.0,
    prefetch_ahead: int = DEFAULT_AHEAD,
    tablespace_mapping: dict[str, Path] | None = None,
) -> RestoreResult:
    """Unpack, configure recovery, and optionally start and wait.

    Tablespaces go to their original locations or where
    ``tablespace_mapping`` (original location → directory) sends them.

    With ``start``, the first ``prefetch_ahead`` segments are decoded while
    the base backup unpacks, and the following ones while the server
    replays (0 turns that off; see prefetch.py).
    """
    uid, gid = _owner()
    data_dir = data_dir.absolute()
    # every refusal before anything is written
    placements = plan_placements(plan.base, tablespace_mapping or {}, data_dir)
    _prepare_data_dir(data_dir, uid, gid)
    sidecar = data_dir.parent / f".{data_dir.name}.seawall-recovery"
    if sidecar.exists():
        shutil.rmtree(sidecar)
    sidecar.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(sidecar, uid, gid)
    prefetcher = None
    if start and prefetch_ahead > 0:
        prefetcher = Prefetcher(
            backup_dir=repository_for_children(ctx),
            cluster=ctx.settings.pg_cluster_name,
            keys=ctx.keys,
            names=prefetch_names(plan, timeline),
            spool=make_spool(sidecar, (uid, gid)),
            owner=(uid, gid) if os.geteuid() == 0 else None,
            ahead=prefetch_ahead,
        )
        prefetcher.start()
    stats = None
    try:
        result = _restore(
            ctx,
            plan,
            data_dir,
            sidecar,
            uid,
            gid,
            placements,
            port=port,
            action=action,
            timeline=timeline,
            start=start,
            listen_addresses=listen_addresses,
            wait_timeout=wait_timeout,
        )
    finally:
        if prefetcher is not None:
            try:
                stats = prefetcher.stop()
            except Exception as exc:  # never hide the restore's own result or error
                log.warning("WAL prefetch cleanup failed: %s", exc)
                stats = None
        if stats is not None:
            log.info(
                "WAL prefetch: %d of %d planned segments served from the spool "
                "(%d discarded, %d left to wal-fetch)",
                stats.used,
                stats.planned,
                stats.discarded,
                stats.failed,
            )
    result.prefetch = stats
    return result


def _restore(
    ctx: Context,
    plan: RestorePlan,
    data_dir: Path,
    sidecar: Path,
    uid: int,
    gid: int,
    placements: list[Placement],
    *,
    port: int,
    action: Action,
    timeline: int | None,
    start: bool,
    listen_addresses: str,
    wait_timeout: float,
) -> RestoreResult:
    """Unpack, write the recovery configuration, and with ``start`` start and wait."""
    try:
        _unpack(ctx, plan.base, data_dir)
        unpack_tablespaces(ctx, plan.base, placements, uid, gid)
        write_tablespace_map(data_dir, placements)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        remove_placements(placements)
        raise
    for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
        (data_dir / stale).unlink(missing_ok=True)
    (data_dir / "recovery.signal").write_text("")
    script = write_wrapper(ctx, sidecar, uid, gid)
    socket_dir = sidecar if len(str(sidecar)) < 90 else Path("/tmp")
    pg = plan.base.postgres
    version_num = pg.server_version_num if pg and pg.server_version_num else 150000
    conf = recovery_settings(
        plan,
        # PostgreSQL runs it through sh -c: the data dir's path may hold
        # spaces or quotes
        restore_command=f'{shlex.quote(str(script))} "%f" "%p"',
        port=port,
        socket_dir=socket_dir,
        action=action,
        timeline=timeline,
        listen_addresses=listen_addresses,
        server_version_num=version_num,
    )
    with open(data_dir / "postgresql.auto.conf", "a") as fh:
        fh.write(
            f"\n# --- seawall pitr-restore {datetime.now(UTC).isoformat(timespec='seconds')}: "
            f"base backup {plan.base.id}, target {plan.target.describe()} ---\n"
        )
        for k, v in conf.items():
            fh.write(f"{k} = {v}\n")
    _chown_tree(data_dir, uid, gid)
    log_file = sidecar / "server.log"
    result = RestoreResult(
        data_dir,
        plan.base.id,
        plan.target.describe(),
        port,
        False,
        "configured",
        log_file,
        sidecar,
        conf,
    )
    if not start:
        return result
    major = version_num // 10000
    bin_dir = ctx.settings.pg_bin_dir
    ctl = find_binary("pg_ctl", bin_dir, min_major=major)
    log_file.touch()
    if os.geteuid() == 0:
        os.chown(log_file, uid, gid)
    pg_ctl.start(ctl, data_dir, log_file, wait=False)
    result.started = True
    result.state = wait_for_recovery(
        ctx, data_dir, log_file, plan.target, action, wait_timeout, ctl, major
    )
    return result


def _fatal_lines(text: str) -> list[str]:
    return [
        ln.split("FATAL:", 1)[-1].split("PANIC:", 1)[-1].strip()
        for ln in text.splitlines()
        if "FATAL:" in ln or "PANIC:" in ln
    ]


def wait_for_recovery(
    ctx: Context,
    data_dir: Path,
    log_file: Path,
    target: Target,
    action: Action,
    timeout: float,
    ctl: Path,
    major: int,
) -> str:
    """Poll the control file and the log until the target is reached or recovery fails."""
    controldata_bin = find_binary("pg_controldata", ctx.settings.pg_bin_dir, min_major=major)
    deadline = time.monotonic() + timeout
    effective = "promote" if target.kind == "latest" else action
    while True:
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        running = pg_ctl.status(ctl, data_dir)
        if effective == "pause" and (
            "recovery has paused" in text or "pausing at the end of recovery" in text
        ):
            return "paused"
        if effective == "shutdown" and not running and "shutdown at recovery target" in text:
            return "shut down at the target"
        if running:
            try:
                state = controldata(controldata_bin, data_dir).get("Database cluster state", "")
            except SeawallError:
                state = ""
            if (
                effective == "promote"
                and state == "in production"
                and "ready to accept connections" in text
            ):
                return "promoted"
        else:
            fatal = _fatal_lines(text)
            if fatal or time.monotonic() > deadline - timeout + 10:
                reason = "; ".join(fatal[-3:]) or "the server exited (see the log)"
                raise RefusedError(f"PostgreSQL stopped during recovery: {reason}; log: {log_file}")
        if time.monotonic() > deadline:
            raise SeawallError(
                f"recovery did not reach {target.describe()} within {timeout:.0f} s; it is still "
                f"running, see {log_file}"
            )
        time.sleep(0.1)
