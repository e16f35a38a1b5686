"""``seawall postgres verify``: check a backup (exit 0 pass, 3 fail)."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.context import Context
from seawall.runner.common import State, command, print_json, settings
from seawall.runner.verify_level import level_note


@command
def verify(
    backup: Annotated[
        str, typer.Argument(help="Backup id, 'latest', or a PATH (backup dir or dump file).")
    ],
    deep: Annotated[
        bool, typer.Option("--deep", help="Restore into a scratch database and compare statistics.")
    ] = False,
    database: Annotated[
        str | None, typer.Option("--database", "-d", help="Series for 'latest'.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    base: Annotated[
        bool,
        typer.Option(
            "--base",
            help="With 'latest': the newest physical base backup (ids of base backups "
            "are recognised without it). --deep then runs pg_verifybackup and checks the WAL.",
        ),
    ] = False,
) -> None:
    """Verify sha256, decryption, decompression and pg_restore --list; --deep restores it for real.

    Without the decryption identity (a host holding only ENCRYPTION_RECIPIENTS) the
    'stored' level runs instead and says so: stored bytes against the sha256 taken while
    writing, the age header and framing, the structure recorded while streaming.

    Exit codes: 0 passed, 3 verification failed (corrupt), 4 backup or file not found,
    5 PostgreSQL unreachable (--deep), 8 wrong key, or --deep without the key (see
    `seawall --help`).
    """
    from seawall.postgres.logical.interrupt import sigterm_as_interrupt
    from seawall.postgres.logical.select import resolve
    from seawall.postgres.logical.verify import verify_source
    from seawall.progress import progress

    ctx = Context(settings())
    if _verify_base(ctx, backup, base, deep, json_out):
        return
    source = resolve(ctx, backup, database)
    with (
        sigterm_as_interrupt(),
        progress(f"verify {source.label}", quiet=State.quiet or json_out) as tick,
    ):
        result = verify_source(ctx, source, deep=deep, progress=tick)
    if json_out:
        print_json({"backup": source.label, **result.model_dump(mode="json")})
        return
    if not State.quiet:
        for check in result.checks:
            typer.echo(f"  ok  {check}")
        # Undecided is not failed: the backup keeps its status (exit 0).
        for item in result.undecided:
            typer.echo(f"  undecided  {item}")
        typer.echo(
            f"{source.label}: verification passed ({level_note(result)}) "
            f"in {result.duration_seconds:.1f}s"
            + (f"; {len(result.undecided)} undecided" if result.undecided else "")
        )


def _verify_base(ctx: Context, ref: str, base: bool, deep: bool, json_out: bool) -> bool:
    """Verify a physical base backup if ``ref`` names one; False if it does not."""
    from seawall.catalog.locks import backup_hold
    from seawall.errors import NotFoundError, VerificationError
    from seawall.postgres.physical.verify import verify_base_backup

    if not base and ref == "latest":
        return False
    if base:
        ctx.require_repository()
    try:
        manifest = ctx.catalog.find(ref, "postgresql", "base")
    except NotFoundError:
        if base:
            raise
        return False
    with backup_hold(ctx.storage, manifest.engine, manifest.kind, manifest.series, manifest.id):
        result = verify_base_backup(ctx, manifest, deep=deep)
        fresh = ctx.catalog.find(manifest.id, "postgresql", "base", manifest.series)
        fresh.verification = result
        ctx.catalog.write(fresh)
    if json_out:
        print_json({"backup": manifest.id, **result.model_dump(mode="json")})
    elif not State.quiet:
        for check in result.checks:
            typer.echo(f"  ok  {check}")
    if not result.ok:
        raise VerificationError(f"base backup {manifest.id}: {result.message}")
    if not json_out and not State.quiet:
        typer.echo(f"{manifest.id}: base backup verification passed ({level_note(result)})")
    return True
