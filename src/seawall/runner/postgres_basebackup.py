"""``seawall postgres basebackup``: a physical base backup for PITR."""

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
def basebackup(
    wal_wait: Annotated[
        float,
        typer.Option(
            "--wal-wait",
            help="Seconds to wait for the backup's WAL to reach the archive (0: do not wait).",
        ),
    ] = 60.0,
    verify: VerifyAfter = None,
    max_rate: MaxRate = None,
    spread_checkpoint: Annotated[
        bool,
        typer.Option(
            "--spread-checkpoint", help="Let the server spread its checkpoint (slower, gentler)."
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """pg_basebackup (tar + backup_manifest) through compression/encryption into BACKUP_DIR.

    The series is PG_CLUSTER_NAME. The WAL the backup needs comes from the archive
    (archive_command = 'seawall postgres wal-push %p'); pitr-restore needs both.
    """
    from seawall.app.backup import run_basebackup
    from seawall.context import Context
    from seawall.progress import progress

    ctx = Context(settings(**rate_override(max_rate)))
    ctx.ensure_repository()
    with progress("pg_basebackup", quiet=State.quiet or json_out) as tick:
        m = run_basebackup(
            ctx,
            wal_wait=wal_wait,
            verify=verify,
            fast_checkpoint=not spread_checkpoint,
            progress=tick,
        )
    if json_out:
        print_json(m.model_dump(mode="json"))
        return
    if not State.quiet:
        pg = m.postgres
        assert pg is not None
        state = (
            f"verified ({m.verification.effective_level})"
            if m.verification and m.verification.ok
            else "not verified"
        )
        typer.echo(
            f"{m.series}: base backup {m.id} ok, {human_size(m.stored_size)} stored "
            f"({human_size(m.raw_size)} raw) in {m.duration_seconds or 0:.1f}s, "
            f"WAL {pg.start_wal}..{pg.stop_wal} (LSN {pg.start_lsn}..{pg.stop_lsn}), {state}"
        )
