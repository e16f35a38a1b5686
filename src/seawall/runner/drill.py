"""``seawall drill``: restore every target aside, check it, record RTO/RPO (exit 0 passed, 3 failed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seawall.runner.common import State, command, print_json, settings


@command
def drill(
    json_out: Annotated[bool, typer.Option("--json", help="Print the drill as JSON.")] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write the report (<drill id>.md and <drill id>.json) into this directory "
            "(created if missing; its parent must exist).",
        ),
    ] = None,
) -> None:
    """DR drill: restore the newest backups into scratch copies, check them, drop them.

    PostgreSQL logical backups go into a scratch database seawall_drill_<id>
    (statistics, amcheck, DRILL_SMOKE_QUERY), Qdrant snapshots into scratch
    collections (points count, sample searches), base backups through PITR
    into a throwaway server. RTO and RPO are measured against
    DRILL_RTO_OBJECTIVE and DRILL_RPO_OBJECTIVE; the result is recorded in the
    catalog for the exporter. Production is only read.

    Exit codes: 0 every target passed, 2 the --report directory's parent does
    not exist (checked before the drill runs), 3 a target failed (the report
    names the check; an unreachable server fails its targets too), 6 another
    drill is running, 7 the report cannot be written (see `seawall --help`).
    """
    from seawall.app.drill import run_drill
    from seawall.context import Context
    from seawall.drill.records import check_report_dir, write_report
    from seawall.errors import VerificationError

    if report is not None:
        check_report_dir(report)  # before an hour of drill, not after
    ctx = Context(settings())
    result = run_drill(ctx)
    if report is not None:
        write_report(report, result)
    if json_out:
        print_json(result.as_dict())
    elif not State.quiet:
        for t in result.targets:
            mark = "ok  " if t.passed else "FAIL"
            rto = f"{t.rto_seconds:.1f}s" if t.rto_seconds is not None else "-"
            rpo = f"{t.rpo_seconds:.0f}s" if t.rpo_seconds is not None else "-"
            typer.echo(f"{mark} {t.engine} {t.method} {t.series}: RTO {rto}, RPO {rpo}")
            for c in t.checks:
                typer.echo(f"       {c.status:7} {c.name}: {c.detail}")
            if t.error:
                typer.echo(f"       error: {t.error}")
        for gone in result.leftovers_removed:
            typer.echo(f"removed leftover of an earlier drill: {gone}")
        if not result.objectives_met:
            missed = [o for o in result.objectives() if o["met"] is False]
            for o in missed:
                typer.echo(
                    f"objective missed: {o['target']} {o['measure']} {o['seconds']:.0f}s "
                    f"> {o['objective_seconds']:.0f}s"
                )
        typer.echo(f"drill {result.id}: {'passed' if result.passed else 'FAILED'}")
    if not result.passed:
        failed = [t for t in result.targets if not t.passed]
        raise VerificationError(
            f"drill {result.id} failed: "
            + "; ".join(f"{t.engine} {t.method} {t.series}: {t.message()}" for t in failed)[:600]
        )
