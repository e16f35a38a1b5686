"""``seawall pin``: keep one backup whatever the retention policy says."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings
from seawall.runner.lifecycle_opts import Engine, Kind, Ref, Series


@command
def pin(
    backup: Ref,
    note: Annotated[
        str | None, typer.Option("--note", help="Why it is kept (shown by list, prune, info).")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Keep through this UTC date (YYYY-MM-DD) or until this ISO date-time; "
            "then retention applies again. Default: for good.",
        ),
    ] = None,
    engine: Engine = None,
    kind: Kind = None,
    series: Series = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the pin as JSON.")] = False,
) -> None:
    """Pin a backup: prune never deletes it (nor the WAL a pinned base backup needs).

    Pinning again replaces the note and the end date. Exit codes: 4 no such
    backup, 9 the backup failed or --until is in the past, 6 the series is
    locked by a running backup or prune.
    """
    from seawall.context import Context
    from seawall.lifecycle.pin import parse_until, pin_backup
    from seawall.lifecycle.select import Selector, resolve_one, series_label

    ctx = Context(settings())
    ctx.require_repository()
    end = parse_until(until) if until is not None else None
    m = resolve_one(ctx, backup, Selector(engine, kind, series))
    done = pin_backup(ctx, m, note=note, until=end)
    assert done.pin is not None
    if json_out:
        print_json(
            {"id": done.id, "series": series_label(done), "pin": done.pin.model_dump(mode="json")}
        )
        return
    typer.echo(f"{series_label(done)} {done.id}: {done.pin.describe(done.pin.at)}")
