"""``seawall postgres list``: logical backups, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings
from seawall.units import human_size


@command
def list_backups(
    database: Annotated[
        str | None, typer.Option("--database", "-d", help="Only this database.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON for scripts.")] = False,
) -> None:
    """List logical backups (id, database, time, size, compression, encryption, verification, status)."""
    from seawall.context import Context
    from seawall.postgres.logical.listing import rows

    ctx = Context(settings())
    ctx.require_repository()
    found, errors = rows(ctx, database)
    for err in errors:
        typer.echo(f"seawall: warning: {err}", err=True)
    if json_out:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        typer.echo(f"no logical backups in {ctx.storage.describe()}")
        return
    header = (
        "ID",
        "DATABASE",
        "TYPE",
        "TIME (UTC)",
        "SIZE",
        "COMPR",
        "ENCR",
        "VERIFIED",
        "STATUS",
        "TIERS",
        "PINNED",
    )
    table = [header]
    for r in found:
        verified = (
            "-"
            if r.verified is None
            else (
                "FAILED"
                if not r.verified
                else {"deep": "deep", "stored": "stored"}.get(r.verified_level or "", "yes")
            )
        )
        table.append(
            (
                r.id,
                r.database,
                r.type,
                r.time.replace("+00:00", "Z"),
                human_size(r.size),
                r.compression,
                "yes" if r.encrypted else "no",
                verified,
                r.status,
                ",".join(r.tiers) or "-",
                r.pinned or "-",
            )
        )
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
