"""``seawall qdrant restore``: upload a snapshot back and prove the restore."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings


@command
def restore(
    ref: Annotated[str, typer.Argument(help="Backup id, `latest`, or a PATH (backup directory).")],
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            help="Which collection's backup (needed for `latest` when several).",
        ),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Restore under this collection name instead.")
    ] = None,
    clean: Annotated[
        bool,
        typer.Option(
            "--clean", help="Replace the target collection if it exists (as postgres restore)."
        ),
    ] = False,
    priority: Annotated[
        str,
        typer.Option(
            "--priority",
            help="snapshot (the snapshot wins), replica (existing data wins) or no_sync.",
        ),
    ] = "snapshot",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the decoded snapshot file(s) here instead of uploading."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Streamed upload with checksum, then points count and sample searches are checked.

    A collection that exists is replaced only with --clean (exit 9 without it,
    the collection untouched), as `postgres restore` does with a database.
    """
    from seawall.context import Context
    from seawall.errors import ConfigError
    from seawall.qdrant.restore import restore as run_restore
    from seawall.qdrant.select import resolve

    if priority not in ("snapshot", "replica", "no_sync"):
        raise ConfigError(f"--priority must be snapshot, replica or no_sync, not {priority!r}")
    ctx = Context(settings())
    source = resolve(ctx, ref, collection)
    res = run_restore(
        ctx,
        source,
        target=to,
        priority=priority,  # type: ignore[arg-type]
        output=output,
        clean=clean,
    )
    if json_out:
        print_json(
            {
                "backup": source.manifest.id,
                "collection": res.collection,
                "replaced": res.replaced,
                "points_count": res.points_count,
                "expected_points": res.expected_points,
                "checks": res.checks,
                "output": str(res.output) if res.output else None,
            }
        )
        return
    if res.output is not None:
        typer.echo(f"{source.label}: decoded to {res.output}")
        return
    verb = "replaced" if res.replaced else "created"
    typer.echo(f"{source.label}: restored into {res.collection!r} ({verb})")
    for line in res.checks:
        typer.echo(f"  - {line}")
