"""``seawall postgres pitr-restore``: a new data directory at a point in time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seawall.runner.common import State, command, print_json, settings


@command
def pitr_restore(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="New or empty directory for the restored cluster.")
    ],
    target_time: Annotated[
        str | None,
        typer.Option(
            "--target-time", help="ISO 8601 time (no zone = UTC), e.g. 2026-11-24T15:30:00Z."
        ),
    ] = None,
    target_lsn: Annotated[
        str | None, typer.Option("--target-lsn", help="An LSN, e.g. 0/3000060.")
    ] = None,
    target_xid: Annotated[
        str | None, typer.Option("--target-xid", help="A transaction id.")
    ] = None,
    target_name: Annotated[
        str | None, typer.Option("--target-name", help="A restore point (pg_create_restore_point).")
    ] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Replay all archived WAL.")] = False,
    target_action: Annotated[
        str, typer.Option("--target-action", help="promote | pause | shutdown at the target.")
    ] = "promote",
    timeline: Annotated[
        int | None, typer.Option("--timeline", help="Recovery target timeline (default: latest).")
    ] = None,
    base_backup: Annotated[
        str | None,
        typer.Option("--base-backup", help="Use this base backup id instead of choosing."),
    ] = None,
    start: Annotated[
        bool, typer.Option("--start", help="Start the server and wait for the target.")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port of the restored server.")] = 5433,
    listen_addresses: Annotated[
        str, typer.Option("--listen-addresses", help="listen_addresses of the restored server.")
    ] = "127.0.0.1",
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", help="Seconds to wait for recovery with --start.")
    ] = 3600.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only plan: which base backup, which window.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    tablespace_mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--tablespace-mapping",
            help="OLD=NEW: restore the tablespace at OLD into the new or empty directory NEW "
            "(repeatable; as pg_basebackup's option). Default: the original locations.",
        ),
    ] = None,
) -> None:
    """Restore base backup + archived WAL up to a target into --data-dir.

    Picks the newest base backup that ends before the target, refuses a target the
    archive cannot reach (the message names the recoverable window), writes
    recovery.signal and restore_command, and keeps the restored server away from the
    production archive (archive_mode = off, its own port and socket). Tablespaces go
    to their original locations or --tablespace-mapping's; each must be new or empty
    (exit 9 otherwise).
    """
    from seawall.context import Context
    from seawall.errors import ConfigError
    from seawall.postgres.physical.pitr import execute_restore, plan_restore
    from seawall.postgres.physical.pitr_plan import make_target
    from seawall.postgres.physical.tblspc_restore import parse_mapping, plan_placements

    if target_action not in ("promote", "pause", "shutdown"):
        raise ConfigError("--target-action must be promote, pause or shutdown")
    mapping = parse_mapping(tablespace_mapping or [])
    ctx = Context(settings())
    ctx.require_repository()
    target = make_target(
        time_=target_time, lsn=target_lsn, xid=target_xid, name=target_name, latest=latest
    )
    plan = plan_restore(ctx, target, base_id=base_backup, timeline=timeline)
    # refusals about tablespace targets come with the plan, on a dry run too
    placements = plan_placements(plan.base, mapping, data_dir)
    summary = {
        "base_backup": plan.base.id,
        "target": target.describe(),
        "window": plan.window,
        "wal_reaches": plan.reach.last_segment,
        "tablespaces": [
            {
                "name": p.space.name,
                "oid": p.space.oid,
                "from": p.space.location,
                "to": str(p.target),
            }
            for p in placements
        ],
    }
    if dry_run:
        if json_out:
            print_json(summary)
        else:
            typer.echo(
                f"would restore base backup {plan.base.id} and replay WAL to {target.describe()} "
                f"(archive reaches {plan.reach.last_segment}); {plan.window}"
            )
            for p in placements:
                typer.echo(f"tablespace {p.space.name!r}: {p.space.location} -> {p.target}")
        return
    result = execute_restore(
        ctx,
        plan,
        data_dir,
        port=port,
        action=target_action,  # type: ignore[arg-type]
        timeline=timeline,
        start=start,
        listen_addresses=listen_addresses,
        wait_timeout=wait_timeout,
        tablespace_mapping=mapping,
    )
    if json_out:
        print_json(
            {
                **summary,
                "data_dir": str(result.data_dir),
                "port": result.port,
                "state": result.state,
                "log_file": str(result.log_file),
            }
        )
    elif not State.quiet:
        typer.echo(
            f"restored base backup {result.base_id} into {result.data_dir} (port {result.port}); "
            f"recovery to {result.target}: {result.state}"
        )
        if not result.started:
            typer.echo(
                f"start it with: pg_ctl -D {result.data_dir} -l {result.log_file} start "
                "(as the postgres user)"
            )
