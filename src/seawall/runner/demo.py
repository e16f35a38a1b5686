"""``seawall demo``: see backup, verify and restore work in a minute."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seawall.runner.common import command, print_json


@command
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the backup directory and key afterwards.")
    ] = False,
    pg_bin_dir: Annotated[
        Path | None,
        typer.Option(
            "--pg-bin-dir",
            help="PostgreSQL server binaries (default: newest in /usr/lib/postgresql).",
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary at the end.")
    ] = False,
) -> None:
    """Start a throwaway PostgreSQL, back it up (zstd + age), verify, restore, compare, clean up."""
    from seawall.app.demo import run_demo
    from seawall.log import setup_logging

    setup_logging("warning", "text", None, quiet=True)
    summary = run_demo(bin_dir=pg_bin_dir, keep=keep, say=lambda s: typer.echo(s, err=json_out))
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"demo finished in {summary['seconds']}s: backup, verify and restore all work")
