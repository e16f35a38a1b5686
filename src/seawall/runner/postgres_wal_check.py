"""``seawall postgres wal-check``: continuity of the WAL archive and the PITR window."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings


@command
def wal_check(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Gaps per timeline, base backups without their WAL, WAL names stored more than
    once, timeline history files not archived, the recoverable window, and the age of
    the newest segment. Exit 3 on a gap, a base backup missing WAL, a name stored more
    than once, or a later timeline without its history file."""
    from datetime import UTC, datetime

    from seawall.context import Context
    from seawall.errors import VerificationError
    from seawall.postgres.wal.archive import describe_window
    from seawall.postgres.wal.check import check_archive

    ctx = Context(settings())
    ctx.require_repository()
    report = check_archive(ctx, datetime.now(UTC))
    if json_out:
        print_json(report.to_dict())
    else:
        typer.echo(
            f"cluster {report.cluster}: {report.segments} segments on timelines "
            f"{', '.join(str(t) for t in report.timelines) or '-'}"
        )
        for gap in report.gaps:
            typer.echo(
                f"GAP on timeline {gap.timeline}: {gap.count} segment(s) missing, "
                f"{gap.first_missing}..{gap.last_missing}"
            )
        for dup in report.duplicates:
            what = "different contents" if dup.different_content else "the same content"
            typer.echo(
                f"DUPLICATE {dup.name}: stored {len(dup.keys)} times with {what} "
                f"({', '.join(k.rsplit('/', 1)[-1] for k in dup.keys)}); wal-fetch refuses it"
            )
        for name in report.missing_histories:
            typer.echo(
                f"MISSING HISTORY {name}: that timeline's WAL is archived, its history is not"
            )
        for b in report.base_backups:
            status = "ok" if b["consistent"] else f"MISSING WAL {b['missing'] or b['stop_wal']}"
            typer.echo(f"base backup {b['id']}: WAL {b['start_wal']}..{b['stop_wal']} {status}")
        typer.echo(describe_window(report))
        if report.newest_segment:
            typer.echo(
                f"newest segment {report.newest_segment}, "
                f"{report.newest_segment_age_seconds or 0:.0f}s old"
            )
        for err in report.errors:
            typer.echo(f"warning: {err}", err=True)
    if report.duplicates:
        names = ", ".join(d.name for d in report.duplicates[:3])
        more = f" and {len(report.duplicates) - 3} more" if len(report.duplicates) > 3 else ""
        raise VerificationError(
            f"WAL stored more than once under one name ({names}{more}): wal-fetch refuses "
            "such a name, so recovery stops there; find which copy belongs to this cluster's "
            "history (two clusters sharing PG_CLUSTER_NAME, a diverged standby), move the "
            "other out of the archive, then run wal-check again"
        )
    if report.missing_histories:
        names = ", ".join(report.missing_histories)
        raise VerificationError(
            f"timeline history file {names} is not in the archive: recovery to the latest "
            "point cannot follow that timeline and silently ends on the older one; push it "
            f"from the promoted server's pg_wal (`seawall postgres wal-push pg_wal/"
            f"{report.missing_histories[0]}` as PostgreSQL's user)"
        )
    if not report.ok:
        raise VerificationError(
            "the WAL archive has gaps: point-in-time recovery cannot cross them; "
            "take a new base backup and check archive_command"
        )
