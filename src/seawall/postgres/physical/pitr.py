"""Point-in-time recovery: base backup + archived WAL up to a target.

Steps, and why each is there:

1. **Plan** (no side effects): parse the target; list the archive; pick the
   base backup — the newest one that ends before the target (time, LSN,
   xid), the newest for ``--latest``, the oldest for a named restore point
   (its position is unknown without decoding WAL; ``--base-backup`` picks
   another); follow archived segments from its start segment along the
   timeline history and refuse up front a target the WAL cannot reach,
   naming the recoverable window.
2. **Unpack** the base backup into an empty data directory owned by the
   ``postgres`` user, mode 0700.
3. **Configure recovery**: ``recovery.signal`` and, appended to
   ``postgresql.auto.conf`` (later lines win over the source's settings
   copied with the backup): restore_command through a wrapper script (no
   secret on argv; the identity sits in a 0600 file beside the data dir),
   the target, and overrides that keep the restored server from touching
   production: its own port and socket directory, ``archive_mode = off``,
   no replication connection.
4. With ``--start``: start it (as the data dir's owner) and wait until the
   target is reached; PostgreSQL's own reason is shown if it refuses.

The wrapper turns any wal-fetch failure other than "not archived" (exit 1)
into exit 126, which PostgreSQL treats as fatal: a corrupt segment stops the
recovery loudly instead of ending it early at an older point.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from seawall.catalog.models import Manifest
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.errors import (
    ConfigError,
    NotFoundError,
    RefusedError,
    SeawallError,
    StorageError,
)
from seawall.log import get_logger
from seawall.pipeline.stream import decode_to
from seawall.postgres.physical.basebackup import base_manifests
from seawall.postgres.physical.prefetch import (
    DEFAULT_AHEAD,
    Prefetcher,
    PrefetchStats,
    make_spool,
)
from seawall.postgres.tools import pg_ctl
from seawall.postgres.tools.base import child_env
from seawall.postgres.tools.pg_controldata import controldata
from seawall.postgres.tools.pg_ctl import find_pg_binary as find_binary
from seawall.postgres.wal.archive import (
    ArchiveListing,
    BaseRef,
    Reach,
    WindowReport,
    analyse,
    describe_window,
    list_archive,
    load_histories,
    reach,
    timeline_path,
)
from seawall.retention.walnames import format_lsn, parse_lsn, parse_wal_name
from seawall.storage.factory import child_access

TargetKind = Literal["time", "lsn", "xid", "name", "latest"]
Action = Literal["promote", "pause", "shutdown"]

log = get_logger("postgres.pitr")


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    value: str = ""
    time: datetime | None = None
    lsn: int | None = None
    xid: int | None = None

    def describe(self) -> str:
        if self.kind == "latest":
            return "the end of the archived WAL"
        if self.kind == "time" and self.time is not None:
            return f"time {self.time.isoformat()}"
        return f"{self.kind} {self.value}"


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC (said in --help)."""
    raw = text.strip().replace(" ", "T", 1) if "T" not in text else text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"--target-time {text!r} is not a time; use ISO 8601 like 2026-11-24T15:30:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def make_target(
    *,
    time_: str | None = None,
    lsn: str | None = None,
    xid: str | None = None,
    name: str | None = None,
    latest: bool = False,
) -> Target:
    given = [x for x in (time_, lsn, xid, name) if x is not None] + (["latest"] if latest else [])
    if len(given) != 1:
        raise ConfigError(
            "give exactly one of --target-time, --target-lsn, --target-xid, --target-name, --latest"
        )
    if time_ is not None:
        return Target("time", time_, time=parse_time(time_))
    if lsn is not None:
        try:
            return Target("lsn", lsn, lsn=parse_lsn(lsn))
        except ValueError:
            raise ConfigError(f"--target-lsn {lsn!r} is not an LSN (like 0/3000060)") from None
    if xid is not None:
        if not xid.isdigit():
            raise ConfigError(f"--target-xid {xid!r} is not a transaction id (a number)")
        return Target("xid", xid, xid=int(xid))
    if name is not None:
        if not name or len(name) >= 64:
            raise ConfigError("--target-name must be 1 to 63 characters")
        return Target("name", name)
    return Target("latest")


@dataclass
class RestorePlan:
    base: Manifest
    target: Target
    reach: Reach
    window: str
    report: WindowReport
    listing: ArchiveListing


def _base_ref(m: Manifest) -> BaseRef | None:
    pg = m.postgres
    if pg is None or not (pg.start_wal and pg.stop_wal and pg.stop_lsn and pg.timeline):
        return None
    return BaseRef(m.id, pg.timeline, pg.start_wal, pg.stop_wal, parse_lsn(pg.stop_lsn), m.time)


def plan_restore(
    ctx: Context,
    target: Target,
    *,
    base_id: str | None = None,
    timeline: int | None = None,
    now: datetime | None = None,
) -> RestorePlan:
    """Pick the base backup and check the archive can reach the target."""
    cluster = ctx.settings.pg_cluster_name
    bases = [m for m in base_manifests(ctx, cluster) if _base_ref(m) is not None]
    if not bases:
        raise NotFoundError(
            f"no successful base backup of cluster {cluster!r} in {ctx.storage.describe()}; "
            "run `seawall postgres basebackup` (and check PG_CLUSTER_NAME)"
        )
    seg_size = next(
        (m.postgres.wal_segment_size for m in bases if m.postgres and m.postgres.wal_segment_size),
        16 << 20,
    )
    listing = list_archive(ctx.storage, cluster, seg_size)
    load_histories(listing, ctx.storage, ctx.keys)
    refs = [r for r in (_base_ref(m) for m in bases) if r is not None]
    report = analyse(listing, cluster, refs, now or datetime.now(UTC))
    window = describe_window(report)
    usable = [m for m in bases if _consistent(listing, m) and _on_path(listing, m, timeline)]
    if base_id is not None:
        chosen = next((m for m in bases if m.id == base_id), None)
        if chosen is None:
            raise NotFoundError(
                f"base backup {base_id!r} not found; `seawall postgres list` shows ids"
            )
    else:
        if not usable:
            raise RefusedError(
                f"no base backup of {cluster!r} has its WAL in the archive; {window}"
            )
        chosen = _choose(usable, target, window)
    ref = _base_ref(chosen)
    assert ref is not None
    r = reach(listing, ref.start_wal, timeline)
    if not _consistent(listing, chosen):
        raise RefusedError(
            f"base backup {chosen.id} cannot become consistent: WAL {r.missing or ref.stop_wal} "
            f"is missing from the archive; {window}"
        )
    gap = f" (the archive has a gap at {r.missing})" if r.missing else ""
    end_time = r.end_time.isoformat(timespec="seconds") if r.end_time else "?"
    if target.kind == "time":
        assert target.time is not None
        if target.time < chosen.time:
            raise RefusedError(
                f"target {target.time.isoformat()} is before base backup {chosen.id} "
                f"ended ({chosen.time.isoformat(timespec='seconds')}); {window}"
            )
        if r.end_time is None or target.time > r.end_time:
            raise RefusedError(
                f"target {target.time.isoformat()} is after the newest WAL reachable from base "
                f"backup {chosen.id} (archived up to {end_time}){gap}; {window}"
            )
    elif target.kind == "lsn":
        assert target.lsn is not None
        if target.lsn < ref.stop_lsn:
            raise RefusedError(
                f"target LSN {target.value} is before base backup {chosen.id} became consistent "
                f"({format_lsn(ref.stop_lsn)}); {window}"
            )
        if r.end_lsn is None or target.lsn > r.end_lsn:
            raise RefusedError(
                f"target LSN {target.value} is after the newest WAL reachable from base backup "
                f"{chosen.id} (up to {format_lsn(r.end_lsn or 0)}){gap}; {window}"
            )
    elif target.kind == "latest" and r.missing:
        raise RefusedError(
            f"--latest would silently stop at the gap before {r.missing}, archived up to "
            f"{end_time}; give an explicit --target-time/--target-lsn before the gap, or restore "
            f"the missing WAL; {window}"
        )
    return RestorePlan(chosen, target, r, window, report, listing)


def _on_path(listing: ArchiveListing, m: Manifest, timeline: int | None) -> bool:
    """Can recovery towards the target timeline start from this base backup?

    A base backup on an ancestor timeline qualifies only if it became
    consistent before that timeline was left (the switch point recorded in
    the target timeline's history file); one taken later on the old timeline
    belongs to another branch of history.
    """
    ref = _base_ref(m)
    if ref is None:
        return False
    tls = listing.timelines()
    target_tl = timeline if timeline is not None else max(tls, default=ref.timeline)
    if ref.timeline == target_tl:
        return True
    if ref.timeline > target_tl:
        return False
    history = listing.histories.get(target_tl)
    if not history:
        return True  # unknown history: assume a straight line
    ends = {e.parent: e.switch_lsn for e in history}
    return ref.timeline in ends and ref.stop_lsn <= ends[ref.timeline]


def _consistent(listing: ArchiveListing, m: Manifest) -> bool:
    ref = _base_ref(m)
    if ref is None:
        return False
    r = reach(listing, ref.start_wal)
    stop = parse_wal_name(ref.stop_wal, listing.segment_size).segno
    return r.end_lsn is not None and stop is not None and r.end_lsn > stop * listing.segment_size


def _choose(bases: list[Manifest], target: Target, window: str) -> Manifest:
    """The newest base backup that ends before the target (bases oldest first)."""
    if target.kind == "latest":
        return bases[-1]
    if target.kind == "name":
        return bases[0]
    if target.kind == "time":
        assert target.time is not None
        before = [m for m in bases if m.time <= target.time]
        if not before:
            raise RefusedError(
                f"target {target.time.isoformat()} is before the oldest usable base backup "
                f"({bases[0].id}, ended {bases[0].time.isoformat(timespec='seconds')}); {window}"
            )
        return before[-1]
    if target.kind == "lsn":
        assert target.lsn is not None
        before = []
        for m in bases:
            ref = _base_ref(m)
            if ref is not None and ref.stop_lsn <= target.lsn:
                before.append(m)
        if not before:
            raise RefusedError(
                f"target LSN {target.value} is before the oldest usable base backup "
                f"({bases[0].id}); {window}"
            )
        return before[-1]
    assert target.xid is not None
    before = [
        m
        for m in bases
        if (m.labels.get("next_xid") or "").isdigit() and int(m.labels["next_xid"]) <= target.xid
    ]
    return before[-1] if before else bases[0]


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


def _seawall_executable() -> str:
    candidate = Path(sys.executable).parent / "seawall"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("seawall")
    if found:
        return found
    raise ConfigError("cannot find the seawall executable for restore_command; put it on PATH")


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
    proc = subprocess.Popen(
        ["tar", "-x", "-f", "-", "-C", str(data_dir)],
        env=child_env(),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        decode_to(
            ctx.storage,
            artifact_key(base, art.name),
            proc.stdin,
            ctx.keys,
            expected_sha256=art.sha256,
            expected_size=art.stored_size,
        )
    except BrokenPipeError:
        pass
    finally:
        proc.stdin.close()
        rc = proc.wait()
    if rc != 0:
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        raise StorageError(f"unpacking base backup {base.id} failed: {err[:300]}")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _repository(ctx: Context) -> str:
    """BACKUP_DIR for restore_command: a local directory with symlinks resolved, or the URL."""
    vol = ctx.storage.local_volume()
    return str(vol.root.resolve()) if vol is not None else ctx.settings.repository


def _write_wrapper(ctx: Context, sidecar: Path, uid: int, gid: int) -> Path:
    s = ctx.settings
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(sidecar),
        "BACKUP_DIR": _repository(ctx),
        "PG_CLUSTER_NAME": s.pg_cluster_name,
    }
    plain, secrets = child_access(s.repository)
    env.update(plain)
    for name, value in secrets.items():  # files 0600, never in the script
        secret_file = sidecar / name.lower()
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        if os.geteuid() == 0:
            os.chown(secret_file, uid, gid)
        env[f"{name}_FILE"] = str(secret_file)
    keys = ctx.keys
    if keys.identities:
        ident = sidecar / "identity"
        ident.write_text("\n".join(keys.identities) + "\n")
        os.chmod(ident, 0o600)
        if os.geteuid() == 0:
            os.chown(ident, uid, gid)
        env["ENCRYPTION_IDENTITY_FILE"] = str(ident)
    if keys.passphrase:
        keyfile = sidecar / "passphrase"
        keyfile.write_text(keys.passphrase + "\n")
        os.chmod(keyfile, 0o600)
        if os.geteuid() == 0:
            os.chown(keyfile, uid, gid)
        env["ENCRYPTION_KEY_FILE"] = str(keyfile)
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    script = sidecar / "restore_command.sh"
    spool = shlex.quote(str(sidecar / "prefetch"))
    script.write_text(
        "#!/bin/sh\n"
        "# Written by `seawall postgres pitr-restore`: PostgreSQL's restore_command.\n"
        "# While `pitr-restore --start` waits, it decodes the next segments into\n"
        "# prefetch/ (checked against the archive's sha256 before they get their\n"
        "# name): take one from there if it is ready, else ask wal-fetch.\n"
        "PATH=/usr/local/bin:/usr/bin:/bin\n"
        f"spool={spool}\n"
        "# without --start, wal-fetch's own read-ahead decodes ahead (WAL_READ_AHEAD)\n"
        f"ahead={int(s.wal_read_ahead)}\n"
        'if [ -d "$spool" ]; then\n'
        "  ahead=0\n"
        '  echo "$1" > "$spool/.requested"\n'
        '  if [ -f "$spool/$1" ] && mv -f "$spool/$1" "$2" 2>/dev/null; then exit 0; fi\n'
        "fi\n"
        "# Environment is explicit (env -i) so the server's own environment cannot\n"
        "# point wal-fetch elsewhere; keys are read from files beside this script.\n"
        f"env -i {assignments} SEAWALL_WAL_READ_AHEAD=$ahead "
        f'{shlex.quote(_seawall_executable())} postgres wal-fetch "$1" "$2"\n'
        "rc=$?\n"
        "# 0 = restored, 1 = not archived (normal: PostgreSQL probes ahead).\n"
        "# Anything else (corrupt file, wrong key) must stop recovery, not end it early:\n"
        "# PostgreSQL treats an exit status above 125 as fatal.\n"
        "if [ $rc -gt 1 ]; then\n"
        '  echo "seawall: wal-fetch $1 failed (exit $rc); stopping recovery" >&2\n'
        "  exit 126\n"
        "fi\n"
        "exit $rc\n"
    )
    os.chmod(script, 0o700)
    if os.geteuid() == 0:
        os.chown(script, uid, gid)
    return script


def recovery_settings(
    plan: RestorePlan,
    *,
    restore_command: str,
    port: int,
    socket_dir: Path,
    action: Action,
    timeline: int | None,
    listen_addresses: str,
    server_version_num: int,
) -> dict[str, str]:
    """The lines appended to postgresql.auto.conf (values already quoted)."""
    t = plan.target
    conf: dict[str, str] = {
        "restore_command": _quote(restore_command),
        "recovery_target_timeline": _quote(str(timeline) if timeline else "latest"),
    }
    if t.kind == "time":
        assert t.time is not None
        conf["recovery_target_time"] = _quote(t.time.strftime("%Y-%m-%d %H:%M:%S.%f+00"))
    elif t.kind == "lsn":
        conf["recovery_target_lsn"] = _quote(t.value)
    elif t.kind == "xid":
        conf["recovery_target_xid"] = _quote(t.value)
    elif t.kind == "name":
        conf["recovery_target_name"] = _quote(t.value)
    if t.kind != "latest":
        conf["recovery_target_action"] = _quote(action)
    conf.update(
        {
            "port": str(port),
            "listen_addresses": _quote(listen_addresses),
            "unix_socket_directories": _quote(str(socket_dir)),
            # the restored server must never archive into the production archive
            "archive_mode": "off",
            "archive_command": _quote(""),
            "primary_conninfo": _quote(""),
            "primary_slot_name": _quote(""),
            "logging_collector": "off",
            "hot_standby": "on",
        }
    )
    if server_version_num >= 150000:
        conf["archive_library"] = _quote("")
    return conf


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
) -> RestoreResult:
    """Unpack, configure recovery, and optionally start and wait.

    With ``start``, the first ``prefetch_ahead`` segments are decoded while
    the base backup unpacks, and the following ones while the server
    replays (0 turns that off; see prefetch.py).
    """
    uid, gid = _owner()
    data_dir = data_dir.absolute()
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
            backup_dir=_repository(ctx),
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
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
        (data_dir / stale).unlink(missing_ok=True)
    (data_dir / "recovery.signal").write_text("")
    script = _write_wrapper(ctx, sidecar, uid, gid)
    socket_dir = sidecar if len(str(sidecar)) < 90 else Path("/tmp")
    pg = plan.base.postgres
    version_num = pg.server_version_num if pg and pg.server_version_num else 150000
    conf = recovery_settings(
        plan,
        restore_command=f'{script} "%f" "%p"',
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


def prefetch_names(plan: RestorePlan, timeline: int | None) -> list[str]:
    """The archived segments recovery will most likely ask for, in order.

    From the base backup's start segment to the end of the reachable WAL;
    per segment number the newest timeline on the path that has it (that is
    the one PostgreSQL tries first). A wrong guess only costs a decode.
    """
    listing = plan.listing
    start = _base_ref(plan.base)
    last = plan.reach.last_segment
    if start is None or last is None:
        return []
    first = parse_wal_name(start.start_wal, listing.segment_size)
    end = parse_wal_name(last, listing.segment_size).segno
    if first.segno is None or end is None:
        return []
    segs = listing.segments()
    path = timeline_path(listing, first.timeline, timeline)
    names = []
    for segno in range(first.segno, end + 1):
        tls = [t for t in path if segno in segs.get(t, {})]
        if not tls:
            break
        names.append(segs[max(tls)][segno].name)
    return names


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
