"""``seawall postgres restore``: restore a logical backup (never half-way under the target name)."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import State, command, print_json, settings


@command
def restore(
    backup: Annotated[
        str, typer.Argument(help="Backup id, 'latest', or a PATH (backup dir or dump file).")
    ],
    target_db: Annotated[
        str, typer.Option("--target-db", help="Database to restore into (created).")
    ],
    clean: Annotated[
        bool, typer.Option("--clean", help="Replace the target database if it exists.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Parallel pg_restore jobs (RESTORE_JOBS)."),
    ] = None,
    with_globals: Annotated[
        bool, typer.Option("--with-globals", help="Also restore roles and memberships.")
    ] = False,
    no_owner: Annotated[
        bool,
        typer.Option("--no-owner", help="Skip ownership and grants (roles missing on the target)."),
    ] = False,
    no_tablespaces: Annotated[
        bool,
        typer.Option(
            "--no-tablespaces",
            help="Create everything in the default tablespace (the target lacks the dump's).",
        ),
    ] = False,
    database: Annotated[
        str | None, typer.Option("--database", "-d", help="Series for 'latest'.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Restore into a temporary database, then rename it to --target-db.

    Exit codes: 0 restored, 1 restore failed (target untouched), 3 corrupt backup,
    4 not found, 5 PostgreSQL unreachable, 8 wrong or missing key, 9 target exists
    without --clean, the server cannot create a database with the backup's
    encoding and locale, or lacks a tablespace the dump uses and
    --no-tablespaces was not given (see `seawall --help`).
    """
    from dataclasses import asdict

    from seawall.context import Context
    from seawall.postgres.logical.interrupt import sigterm_as_interrupt
    from seawall.postgres.logical.restore import restore as do_restore
    from seawall.postgres.logical.select import resolve
    from seawall.progress import progress

    ctx = Context(settings())
    source = resolve(ctx, backup, database)
    with (
        sigterm_as_interrupt(),
        progress(f"decode {source.label}", quiet=State.quiet or json_out) as tick,
    ):
        result = do_restore(
            ctx,
            source,
            target_db,
            clean=clean,
            jobs=jobs,
            with_globals=with_globals,
            no_owner=no_owner,
            no_tablespaces=no_tablespaces,
            progress=tick,
        )
    if json_out:
        print_json({"backup": source.label, **asdict(result)})
        return
    if not State.quiet:
        verb = "replaced" if result.replaced else "created"
        typer.echo(f"{source.label} restored into {target_db} ({verb}, {result.format} format)")
