"""``seawall status`` as a use case: read the repository, judge it, name each fix.

Why read-only and offline: status must answer "are we safe?" when the
database is down too (that is when people ask), so it reads only the
backup repository: manifests, the WAL archive (through the same analysis as
``wal-check``, :func:`seawall.postgres.wal.check.check_archive`) and the
drill records (docs/exporter.md, "DR drill records"). It never decrypts
anything but timeline history files, and only where an identity is set.

What counts as a problem (exit 11) and what only as a warning is listed in
docs/status-and-check.md; the thresholds are the ``STATUS_*`` settings.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta

from seawall.catalog.models import MANIFEST_NAME, Manifest
from seawall.catalog.naming import decode_segment, is_backup_id
from seawall.catalog.wal_layout import wal_clusters
from seawall.context import Context
from seawall.health.model import (
    DrillStatus,
    PitrStatus,
    SeriesStatus,
    Severity,
    StatusReport,
)
from seawall.storage.mirror_layout import deletes_prefix, mirror_id, pending_prefix
from seawall.units import human_duration

#: where drill records live (docs/exporter.md): drills/<engine>/<series>/<id>/manifest.json
DRILLS_DIR = "drills"
#: the operators' objectives, used when a drill record does not carry its own
DEFAULT_RTO_OBJECTIVE = 3600.0
DEFAULT_RPO_OBJECTIVE = 86400.0
#: above this share of the volume used, status warns (backups start failing when full)
VOLUME_WARN_USED = 0.9

ENGINES = ("postgresql", "qdrant")


def _q(text: str) -> str:
    return shlex.quote(text)


def backup_command(engine: str, kind: str, series: str) -> str:
    if engine == "postgresql" and kind == "base":
        return "seawall postgres basebackup"
    if engine == "postgresql":
        return f"seawall postgres backup --database {_q(series)}"
    return f"seawall qdrant backup {_q(series)}"


def verify_command(m: Manifest) -> str:
    if m.engine == "postgresql":
        return f"seawall postgres verify {m.id}"
    return f"seawall qdrant verify {m.id} --collection {_q(m.series)}"


def _interval(ctx: Context, kind: str) -> timedelta:
    s = ctx.settings
    return s.status_base_backup_interval if kind == "base" else s.status_backup_interval


def _judge_series(
    ctx: Context, report: StatusReport, key: tuple[str, str, str], manifests: list[Manifest]
) -> SeriesStatus:
    engine, kind, series = key
    st = SeriesStatus(
        engine,
        kind,
        series,
        _interval(ctx, kind).total_seconds(),
        ctx.settings.status_grace.total_seconds(),
    )
    st.backups = len(manifests)
    st.stored_bytes = sum(m.stored_size for m in manifests)
    finished = [m for m in manifests if m.status != "running"]  # newest first
    newest = next((m for m in manifests if m.ok), None)
    fix_backup = backup_command(engine, kind, series)
    if finished:
        st.last_run_status = finished[0].status
        st.last_run_error = finished[0].error
    if newest is None:
        report.problem("error", st.name, "no successful backup", f"run `{fix_backup}`")
    else:
        st.newest_id, st.newest_time = newest.id, newest.time
        st.age_seconds = (report.now - newest.time).total_seconds()
        if st.stale:
            report.problem(
                "error",
                st.name,
                f"stale: the newest successful backup {newest.id} is "
                f"{human_duration(st.age_seconds)} old (expected every "
                f"{human_duration(st.expected_every_seconds)} + {human_duration(st.grace_seconds)} grace)",
                f"run `{fix_backup}` and check its CronJob/timer "
                "(STATUS_BACKUP_INTERVAL / STATUS_BASE_BACKUP_INTERVAL set the schedule)",
            )
        ver = newest.verification
        if ver is None:
            st.verified = None
            if ctx.settings.verify_backup:
                report.problem(
                    "warning",
                    st.name,
                    f"the newest backup {newest.id} was never verified",
                    f"run `{verify_command(newest)}`",
                )
        else:
            st.verified, st.verification_message = ver.ok, ver.message
            if not ver.ok:
                report.problem(
                    "error",
                    st.name,
                    f"the newest backup {newest.id} FAILED verification: {ver.message}",
                    f"take a new backup (`{fix_backup}`), then `{verify_command(newest)}` "
                    "to see what is damaged",
                )
    if (
        finished
        and finished[0].status == "failed"
        and (newest is None or finished[0].time > newest.time)
    ):
        report.problem(
            "error",
            st.name,
            f"the last run {finished[0].id} failed: {finished[0].error or 'no error recorded'}",
            f"fix the cause named, then run `{fix_backup}`",
        )
    return st


def _series(ctx: Context, report: StatusReport) -> None:
    groups: dict[tuple[str, str, str], list[Manifest]] = {}
    for engine in ENGINES:
        inv = ctx.catalog.inventory(engine)
        scan = ctx.catalog.scan(keys=inv.manifest_keys)
        for err in scan.errors:
            report.problem(
                "warning",
                engine,
                f"unreadable manifest: {err}",
                "restore the manifest from a copy, or remove the backup directory",
            )
        for m in scan.manifests:  # newest first
            groups.setdefault((m.engine, m.kind, m.series), []).append(m)
    s = ctx.settings
    expected: list[tuple[str, str, str]] = []
    if "postgres" in s.active_engines():
        expected += [("postgresql", "logical", db) for db in s.databases]
    if "qdrant" in s.active_engines():
        expected += [("qdrant", "snapshot", c) for c in s.qdrant_collections]
    for key in expected:
        groups.setdefault(key, [])
    if not groups:
        report.problem(
            "error",
            "repository",
            f"no backup at all in {report.repository}",
            "check BACKUP_DIR, then run `seawall backup`",
        )
    for key in sorted(groups):
        st = _judge_series(ctx, report, key, groups[key])
        report.series.append(st)
        report.backup_bytes += st.stored_bytes


def _clusters(ctx: Context, report: StatusReport) -> list[str]:
    found = {s.series for s in report.series if s.engine == "postgresql" and s.kind == "base"}
    found |= {decode_segment(name) for name in wal_clusters(ctx.storage)}
    return sorted(found)


def _pitr(ctx: Context, report: StatusReport) -> None:
    from seawall.postgres.wal.check import check_archive, read_listing

    for cluster in _clusters(ctx, report):
        sub = Context(ctx.settings.model_copy(update={"pg_cluster_name": cluster}))
        listing = read_listing(sub)
        w = check_archive(sub, report.now, listing)
        wal_bytes = sum(f.stored_size for f in listing.files)
        report.wal_bytes += wal_bytes
        subject = f"PITR cluster {cluster}"
        gaps = [f"timeline {g.timeline}: {g.first_missing}..{g.last_missing}" for g in w.gaps]
        report.pitr.append(
            PitrStatus(
                cluster,
                w.earliest,
                w.latest,
                w.latest_lsn,
                w.newest_segment,
                w.newest_segment_age_seconds,
                w.segments,
                gaps,
                wal_bytes,
            )
        )
        for g in w.gaps:
            report.problem(
                "error",
                subject,
                f"WAL gap on timeline {g.timeline}: {g.count} segment(s) missing "
                f"({g.first_missing}..{g.last_missing}); recovery cannot cross it",
                "take a new base backup now (`seawall postgres basebackup`) so the window "
                "restarts after the gap; `seawall check` tests archive_command",
            )
        for d in w.duplicates:
            report.problem(
                "error",
                subject,
                f"WAL {d.name} stored {len(d.keys)} times; wal-fetch refuses it",
                "`seawall postgres wal-check` explains; move the foreign copy out of the archive",
            )
        for name in w.missing_histories:
            report.problem(
                "error",
                subject,
                f"timeline history file {name} is not archived: recovery to the latest point "
                "stays on the older timeline",
                f"push it from the promoted server: `seawall postgres wal-push pg_wal/{name}` "
                "as PostgreSQL's user",
            )
        broken = [b for b in w.base_backups if not b["consistent"]]
        for b in broken:  # (a gap after a consistent one is the gap's problem, named above)
            report.problem(
                "error",
                subject,
                f"base backup {b['id']} cannot become consistent: WAL "
                f"{b['missing'] or b['stop_wal']} is missing",
                "take a new base backup (`seawall postgres basebackup`)",
            )
        if w.earliest is None and not broken:
            report.problem(
                "error",
                subject,
                "nothing is recoverable: no base backup with its WAL in the archive",
                "run `seawall postgres basebackup`",
            )
        limit = ctx.settings.status_wal_max_lag.total_seconds()
        lag = w.newest_segment_age_seconds
        if lag is not None and lag > limit:
            report.problem(
                "error",
                subject,
                f"WAL archive lag: the newest archived segment {w.newest_segment} is "
                f"{human_duration(lag)} old (STATUS_WAL_MAX_LAG {human_duration(limit)})",
                "run `seawall check` (archive_mode, archive_command, a WAL switch); "
                "a quiet database needs archive_timeout to switch segments",
            )


def _drill_keys(ctx: Context) -> list[str]:
    keys = []
    for info in ctx.storage.list(DRILLS_DIR):
        parts = info.key.split("/")
        if len(parts) == 5 and parts[4] == MANIFEST_NAME and is_backup_id(parts[3]):
            keys.append(info.key)
    return keys


def _number(value: object, default: float | None) -> float | None:
    return float(value) if isinstance(value, int | float) else default


def drill_status(m: Manifest) -> DrillStatus:
    extra = (m.model_extra or {}).get("drill") or {}
    rto_obj = _number(extra.get("rto_objective_seconds"), DEFAULT_RTO_OBJECTIVE)
    rpo_obj = _number(extra.get("rpo_objective_seconds"), DEFAULT_RPO_OBJECTIVE)
    assert rto_obj is not None and rpo_obj is not None
    return DrillStatus(
        m.engine,
        m.series,
        m.id,
        m.time,
        m.ok,
        m.error,
        _number(extra.get("rto_seconds"), None),
        _number(extra.get("rpo_seconds"), None),
        rto_obj,
        rpo_obj,
    )


def _drills(ctx: Context, report: StatusReport) -> None:
    scan = ctx.catalog.scan(keys=_drill_keys(ctx))
    newest: dict[tuple[str, str], Manifest] = {}
    for m in scan.manifests:  # newest first
        newest.setdefault((m.engine, m.series), m)
    max_age = ctx.settings.status_drill_max_age
    if not newest:
        severity: Severity = "error" if max_age is not None else "warning"
        report.problem(
            severity,
            "drills",
            "no drill recorded: nobody has proven a restore works",
            "run `seawall drill` (and schedule it: the chart's drill CronJob)",
        )
        return
    for key in sorted(newest):
        d = drill_status(newest[key])
        report.drills.append(d)
        subject = f"drill {d.engine}/{d.series}"
        fix = "read the drill report, fix what it names, then run `seawall drill`"
        if not d.passed:
            report.problem(
                "error",
                subject,
                f"the last drill {d.id} FAILED: {d.error or 'no error recorded'}",
                fix,
            )
        if d.rto_seconds is not None and d.rto_seconds > d.rto_objective_seconds:
            report.problem(
                "error",
                subject,
                f"RTO {human_duration(d.rto_seconds)} is over its objective "
                f"{human_duration(d.rto_objective_seconds)}",
                "make restores faster (RESTORE_JOBS, smaller series) or agree a new objective",
            )
        if d.rpo_seconds is not None and d.rpo_seconds > d.rpo_objective_seconds:
            report.problem(
                "error",
                subject,
                f"RPO {human_duration(d.rpo_seconds)} is over its objective "
                f"{human_duration(d.rpo_objective_seconds)}",
                "back up more often (or archive WAL), then run `seawall drill`",
            )
        age = (report.now - d.time).total_seconds()
        if max_age is not None and age > max_age.total_seconds():
            report.problem(
                "error",
                subject,
                f"the last drill is {human_duration(age)} old "
                f"(STATUS_DRILL_MAX_AGE {human_duration(max_age.total_seconds())})",
                "run `seawall drill`",
            )


def _volume(ctx: Context, report: StatusReport) -> None:
    usage = ctx.storage.usage()
    if usage is None:
        return
    report.volume_total, report.volume_free = usage.total, usage.free
    if usage.total and (usage.total - usage.free) / usage.total > VOLUME_WARN_USED:
        report.problem(
            "warning",
            "repository",
            f"the backup volume is {100 * (usage.total - usage.free) / usage.total:.0f}% full",
            "grow the volume, or shorten retention and run `seawall prune`",
        )


def _mirrors(ctx: Context, report: StatusReport, now: datetime) -> None:
    """A mirror that lags (records in the primary, storage/mirror_layout.py) is a warning:
    the backups are safe on the primary, the off-site copy is not complete."""
    for location in ctx.settings.mirrors:
        mid = mirror_id(location)
        pending = list(ctx.storage.list(pending_prefix(mid)))
        deletes = sum(1 for _ in ctx.storage.list(deletes_prefix(mid)))
        if not pending and not deletes:
            continue
        parts = []
        if pending:
            age = max(0.0, now.timestamp() - min(i.mtime for i in pending))
            parts.append(
                f"{len(pending)} object(s) not copied yet, the oldest for {human_duration(age)}"
            )
        if deletes:
            parts.append(f"{deletes} deletion(s) not applied")
        report.problem(
            "warning",
            f"mirror {location}",
            "; ".join(parts),
            "check the mirror is reachable, then run `seawall sync`",
        )


def gather(ctx: Context, now: datetime) -> StatusReport:
    """The whole report; raises only when the repository cannot be read at all."""
    report = StatusReport(now=now, repository=ctx.storage.describe())
    _series(ctx, report)
    _pitr(ctx, report)
    _drills(ctx, report)
    _volume(ctx, report)
    _mirrors(ctx, report, now)
    return report
