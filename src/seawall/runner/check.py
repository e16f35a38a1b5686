"""``seawall check``: is the setup right? (like ``pgbackrest check``)."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings


@command
def check(
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=1, help="Seconds to wait for the switched WAL segment to be archived."
        ),
    ] = 60.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Is the setup right? Connect to the database; check archive_mode and that archive_command calls
    seawall wal-push into this repository; force a WAL switch and wait until that
    segment is archived here; write and delete a probe object in the repository;
    encrypt a probe (and decrypt it where an identity is configured).

    One line per check. Exit 0 when every check passed, 11 when one failed.
    """
    from seawall.context import Context
    from seawall.errors import UnhealthyError
    from seawall.health.check import run_checks

    show = None if json_out else (lambda item: typer.echo(item.line()))
    report = run_checks(Context(settings()), timeout, show)
    if json_out:
        print_json(report.to_dict())
    if report.failed:
        names = ", ".join(c.name for c in report.failed)
        raise UnhealthyError(f"check failed: {names}; each line above names the fix")
