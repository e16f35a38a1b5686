"""The Typer application: wires one module per command into the CLI tree.

Command modules import their engines lazily (inside the function), so that
``seawall --help`` and every command start fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from seawall import __version__
from seawall.errors import exit_code_table
from seawall.runner.common import State

EPILOG = "Exit codes:\n\n" + "\n\n".join(exit_code_table().splitlines())

app = typer.Typer(
    name="seawall",
    help="Automated backup and disaster recovery for PostgreSQL and Qdrant.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
postgres_app = typer.Typer(
    help="PostgreSQL: logical dumps, base backups, WAL archiving, PITR.",
    no_args_is_help=True,
    epilog=EPILOG,
)
qdrant_app = typer.Typer(
    help="Qdrant: collection snapshots, verify, restore.", no_args_is_help=True, epilog=EPILOG
)
app.add_typer(postgres_app, name="postgres")
app.add_typer(qdrant_app, name="qdrant")

#: (typer app, command name, module under seawall.runner, function name)
COMMANDS: list[tuple[typer.Typer, str, str, str]] = [
    (app, "keygen", "keygen", "keygen"),
    (app, "demo", "demo", "demo"),
    (app, "prune", "prune", "prune"),
    (app, "backup", "backup_all", "backup_all"),
    (app, "exporter", "exporter_cmd", "exporter"),
    (app, "drill", "drill", "drill"),
    (postgres_app, "backup", "postgres_backup", "backup"),
    (postgres_app, "list", "postgres_list", "list_backups"),
    (postgres_app, "verify", "postgres_verify", "verify"),
    (postgres_app, "restore", "postgres_restore", "restore"),
    (postgres_app, "basebackup", "postgres_basebackup", "basebackup"),
    (postgres_app, "pitr-restore", "postgres_pitr_restore", "pitr_restore"),
    (postgres_app, "wal-check", "postgres_wal_check", "wal_check"),
    (postgres_app, "wal-push", "postgres_wal", "wal_push"),
    (postgres_app, "wal-fetch", "postgres_wal", "wal_fetch"),
    (qdrant_app, "collections", "qdrant_collections", "collections"),
    (qdrant_app, "backup", "qdrant_backup", "backup"),
    (qdrant_app, "list", "qdrant_list", "list_backups"),
    (qdrant_app, "verify", "qdrant_verify", "verify"),
    (qdrant_app, "restore", "qdrant_restore", "restore"),
]


def _register() -> None:
    for target, name, module, func in COMMANDS:
        try:
            mod = importlib.import_module(f"seawall.runner.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"seawall.runner.{module}":
                continue  # command not built yet
            raise
        target.command(name, epilog=EPILOG)(getattr(mod, func))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seawall {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML config file (also SEAWALL_CONFIG).", exists=True),
    ] = None,
    backup_dir: Annotated[
        Path | None, typer.Option("--backup-dir", help="Backup root (BACKUP_DIR).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Automated backup and disaster recovery for PostgreSQL and Qdrant."""
    import os

    State.quiet = quiet
    if config is not None:
        os.environ["SEAWALL_CONFIG"] = str(config)
    if backup_dir is not None:
        State.overrides["backup_dir"] = backup_dir


_register()


def run(argv: list[str]) -> int:
    """Run the app on ``argv`` and return the exit code (never raises SystemExit)."""
    try:
        app(args=argv, prog_name="seawall", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
