"""``seawall status``: one screen that answers "are we safe?"."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings


@command
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Are we safe? One screen: per series the newest backup and its age against the schedule, verified or not;
    the PITR window and WAL archive lag; the last drill against its RTO/RPO objectives;
    storage used; and what is wrong, each with the command that fixes it.

    Reads only the repository (works with the database down). Exit 0 when all is
    well (warnings allowed), 11 when something is wrong: usable as a health check.
    """
    from datetime import UTC, datetime

    from seawall.context import Context
    from seawall.errors import UnhealthyError
    from seawall.health.model import render
    from seawall.health.status import gather

    ctx = Context(settings())
    ctx.require_repository()
    report = gather(ctx, datetime.now(UTC))
    if json_out:
        print_json(report.to_dict())
    else:
        for line in render(report):
            typer.echo(line)
    if not report.safe:
        subjects = ", ".join(dict.fromkeys(p.subject for p in report.errors))
        raise UnhealthyError(
            f"not safe: {len(report.errors)} problem(s) ({subjects}); "
            "each is listed above with the command that fixes it"
        )
