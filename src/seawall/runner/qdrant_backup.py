"""``seawall qdrant backup``: snapshot collections (all by default) into BACKUP_DIR."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated

import typer

from seawall.runner.common import (
    MaxRate,
    State,
    VerifyAfter,
    command,
    print_json,
    rate_override,
    settings,
)
from seawall.units import human_size


@command
def backup(
    collection: Annotated[
        list[str] | None,
        typer.Argument(help="Collections to back up (default QDRANT_COLLECTIONS, else all)."),
    ] = None,
    full_storage: Annotated[
        bool,
        typer.Option(
            "--full-storage",
            help="Snapshot the whole node instead (single node; Qdrant restores it only at startup).",
        ),
    ] = False,
    verify: VerifyAfter = None,
    max_rate: MaxRate = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifests as JSON.")] = False,
) -> None:
    """Create, download (checksum-checked), store and verify Qdrant snapshots."""
    from seawall.context import Context
    from seawall.progress import progress

    ctx = Context(settings(**rate_override(max_rate)))
    ctx.ensure_repository()
    quiet = State.quiet or json_out

    @contextlib.contextmanager
    def bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        with progress(f"download {label}", total=total, quiet=quiet) as tick:
            yield tick

    if full_storage:
        if collection:
            raise typer.BadParameter("--full-storage takes no collection names")
        from seawall.app.backup import qdrant_full_storage

        m = qdrant_full_storage(ctx, verify=verify, progress=bar)
        if json_out:
            print_json([m.model_dump(mode="json")])
        else:
            typer.echo(
                f"full storage {m.series}: backup {m.id} ok, {human_size(m.stored_size)} stored "
                f"({human_size(m.raw_size)} raw); Qdrant restores it only at startup"
            )
        return

    from seawall.app.backup import qdrant_backup

    run = qdrant_backup(ctx, list(collection or []), verify=verify, progress=bar)
    if json_out:
        print_json([r.manifest.model_dump(mode="json") for r in run.results if r.manifest])
    for r in run.results:
        if r.manifest is not None and not json_out and not State.quiet:
            m = r.manifest
            state = (
                f"verified ({m.verification.effective_level})"
                if m.verification and m.verification.ok
                else ("not verified" if m.verification is None else "VERIFY FAILED")
            )
            typer.echo(
                f"{r.collection!r}: backup {m.id} ok ({m.kind}), {human_size(m.stored_size)} "
                f"stored ({human_size(m.raw_size)} raw), "
                f"{m.qdrant.points_count if m.qdrant else '?'} points, "
                f"{m.duration_seconds or 0:.1f}s, {state}"
            )
        elif r.error is not None and len(run.results) > 1:
            typer.echo(f"seawall: error: {r.collection!r}: {r.error}", err=True)
    if not run.results and not json_out:
        typer.echo("Qdrant has no collections; nothing to back up")
    run.raise_for_status()
