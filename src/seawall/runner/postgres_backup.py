"""``seawall postgres backup``: logical backups of one or more databases."""

from __future__ import annotations

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
    database: Annotated[
        list[str] | None,
        typer.Option(
            "--database",
            "-d",
            help="Database to back up (repeatable; default DATABASES or DB_NAME).",
        ),
    ] = None,
    verify: VerifyAfter = None,
    max_rate: MaxRate = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifests as JSON.")] = False,
) -> None:
    """pg_dump -Fc each database (plus roles) through compression/encryption into BACKUP_DIR.

    Exit codes: 0 ok, 1 failed, 2 bad configuration, 5 PostgreSQL unreachable or wrong
    password, 6 series locked by another run, 7 backup volume full or unwritable,
    10 some databases failed (see `seawall --help`).
    """
    from seawall.app.backup import backup_database
    from seawall.context import Context
    from seawall.errors import PartialFailureError, SeawallError
    from seawall.postgres.logical.interrupt import sigterm_as_interrupt
    from seawall.progress import progress

    ctx = Context(settings(**rate_override(max_rate)))
    ctx.ensure_repository()
    databases = list(database or ctx.settings.target_databases())
    results = []
    failures: list[tuple[str, SeawallError]] = []
    for db in databases:
        try:
            with (
                sigterm_as_interrupt(),
                progress(f"pg_dump {db}", quiet=State.quiet or json_out) as tick,
            ):
                res = backup_database(ctx, db, progress=tick, verify=verify)
        except SeawallError as exc:
            if len(databases) == 1:
                raise
            typer.echo(f"seawall: error: {db}: {exc}", err=True)
            failures.append((db, exc))
            continue
        results.append(res)
        m = res.manifest
        if not json_out and not State.quiet:
            state = {True: f"verified ({res.level})", False: "VERIFY FAILED", None: "not verified"}[
                res.verified
            ]
            typer.echo(
                f"{db}: backup {m.id} ok, {human_size(m.stored_size)} stored "
                f"({human_size(m.raw_size)} raw) in {m.duration_seconds:.1f}s, {state}"
            )
    if json_out:
        print_json([r.manifest.model_dump(mode="json") for r in results])
    if failures:
        if len(failures) == len(databases):
            raise failures[0][1]
        raise PartialFailureError(
            f"{len(failures)} of {len(databases)} databases failed: "
            + ", ".join(db for db, _ in failures)
        )
