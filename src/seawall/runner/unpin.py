"""``seawall unpin``: hand a pinned backup back to the retention policy."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings
from seawall.runner.lifecycle_opts import Engine, Kind, Ref, Series


@command
def unpin(
    backup: Ref,
    engine: Engine = None,
    kind: Kind = None,
    series: Series = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Remove a backup's pin; the next prune applies the retention policy to it.

    Unpinning a backup that is not pinned succeeds and changes nothing.
    """
    from seawall.context import Context
    from seawall.lifecycle.pin import unpin_backup
    from seawall.lifecycle.select import Selector, resolve_one, series_label

    ctx = Context(settings())
    ctx.require_repository()
    m = resolve_one(ctx, backup, Selector(engine, kind, series))
    was = m.pin is not None
    if was:
        unpin_backup(ctx, m)
    if json_out:
        print_json({"id": m.id, "series": series_label(m), "was_pinned": was})
        return
    typer.echo(f"{series_label(m)} {m.id}: {'unpinned' if was else 'was not pinned'}")
