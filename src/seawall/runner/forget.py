"""``seawall forget``: delete one backup or a whole series (dry run by default)."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings
from seawall.runner.lifecycle_opts import Engine, Kind, Series
from seawall.units import human_size


@command
def forget(
    backup: Annotated[
        str | None,
        typer.Argument(help="Backup id, or 'latest' with --series; none: the whole --series."),
    ] = None,
    engine: Engine = None,
    kind: Kind = None,
    series: Series = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="Delete for real (default: only print the plan).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also forget the newest successful backup of a live series, or a pinned one.",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Forget one backup, or every backup (and rejected run) of a series.

    Prints what it would delete and deletes nothing unless --execute is given.
    Deletion goes as prune's does: manifest first, then the artifacts; the WAL
    archive is left to prune. Exit codes: 4 nothing matches, 9 the newest
    successful backup of a live series (run within RETENTION_FAILED_GRACE) or a
    pinned backup is in the plan without --force, 6 the series is locked.
    """
    from seawall.context import Context
    from seawall.lifecycle.forget import execute_plan, plan, refusal
    from seawall.lifecycle.select import Selector, series_label

    ctx = Context(settings())
    ctx.require_repository()
    the_plan = plan(ctx, backup, Selector(engine, kind, series))
    why = refusal(the_plan)
    result = None
    if execute and (why is None or force):
        result = execute_plan(ctx, the_plan, force=force)
    if json_out:
        data = the_plan.to_dict()
        data["dry_run"] = not execute
        if result is not None:
            data["deleted"] = result.deleted
            data["skipped"] = result.skipped
        print_json(data)
    else:
        verb = "forgot" if result is not None else "would forget"
        for m in the_plan.backups:
            extra = " (needs --force)" if m in the_plan.protected else ""
            typer.echo(
                f"{verb} {series_label(m)} {m.id} {m.status} "
                f"{m.time.isoformat(timespec='seconds')} {human_size(m.stored_size)}{extra}"
            )
        for r in the_plan.rejected:
            typer.echo(f"{verb} rejected run {series_label(r.manifest)} {r.manifest.id}")
        if result is None and not execute:
            typer.echo("dry run: nothing deleted; add --execute to delete")
        elif result is None:
            typer.echo("nothing deleted")
        else:
            for s in result.skipped:
                typer.echo(f"skipped: {s}", err=True)
    if why is not None and not force:
        raise why
