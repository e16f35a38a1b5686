"""``seawall prune``: apply retention to the catalog and the WAL archive."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Annotated, Literal

import typer

from seawall.catalog.locks import series_lock
from seawall.context import Context
from seawall.runner.common import command, print_json, settings
from seawall.units import human_size


@command
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print decisions, delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    engine: Annotated[
        Literal["postgres", "postgresql", "qdrant"] | None,
        typer.Option("--engine", help="Only this engine (postgres or postgresql, qdrant)."),
    ] = None,
    series: Annotated[
        list[str] | None,
        typer.Option("--series", help="Only these series (database, cluster or collection)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list kept WAL files.")
    ] = False,
) -> None:
    """Delete what the retention policy no longer keeps, saying why for every item."""
    from seawall.app.prune import execute, plan

    ctx = Context(settings())
    ctx.require_repository()
    ctx.retention_policy("postgresql", "logical", "*")  # refuse an empty policy up front
    engine_dir = {"postgres": "postgresql", "postgresql": "postgresql", "qdrant": "qdrant"}.get(
        engine or ""
    )
    the_plan = plan(ctx, engine=engine_dir, series=series or None)
    result = None
    if not dry_run:
        # Take each affected series' lock so prune never races a backup.
        touched = sorted({a.series for a in the_plan.drops() if a.what == "backup"})
        with ExitStack() as stack:
            for key in touched:
                eng, kind, name = key.split("/", 2)
                stack.enter_context(
                    series_lock(
                        ctx.storage,
                        eng,
                        kind,
                        name,
                        timeout=ctx.settings.lock_timeout,
                        command="prune",
                    )
                )
            result = execute(ctx, the_plan)
    if as_json:
        data = the_plan.to_dict()
        data["dry_run"] = dry_run
        if result is not None:
            data["deleted"] = result.deleted
            data["skipped"] = result.skipped
        print_json(data)
        return
    lines = []
    for a in the_plan.actions:
        if a.what == "wal" and a.action == "keep" and not verbose:
            continue
        mark = "keep" if a.action == "keep" else ("would drop" if dry_run else "drop")
        tiers = f" [{', '.join(a.tiers)}]" if a.tiers else ""
        note = f" (note: {a.pin['note']})" if a.pin and a.pin.get("note") else ""
        lines.append(
            f"{mark:<10} {a.what:<7} {a.series:<40} {a.name}{tiers}: {'; '.join(a.reasons)}{note}"
        )
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
    drops = the_plan.drops()
    kept_wal = sum(1 for a in the_plan.actions if a.what == "wal" and a.action == "keep")
    summary = (
        f"{len(drops)} to drop ({human_size(sum(a.size for a in drops))}), "
        f"{len(the_plan.actions) - len(drops)} kept"
        + (f" (incl. {kept_wal} WAL files)" if kept_wal else "")
    )
    if dry_run:
        typer.echo(f"dry run: {summary}; nothing deleted")
    elif result is not None:
        typer.echo(f"deleted {result.deleted}; {summary}")
        for s in result.skipped:
            typer.echo(f"skipped: {s}", err=True)
    for err in the_plan.errors:
        typer.echo(f"warning: {err}", err=True)
