"""The Typer application: wires one module per command into the CLI tree.

Command modules import their engines lazily (inside the function), so that
``seawall --help`` and every command start fast.

The exit-code table is the epilog of ``seawall --help`` only (and
docs/exit-codes.md): repeated under every command it pushed the command's
own options off the screen. Flags show no ``<bool>`` type, since they take
no value; a mistyped command gets a suggestion from :mod:`seawall.runner.suggest`
(a close spelling or a known synonym such as ``expire`` → ``prune``) or none.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import core as click, exceptions as click_exc
from typer.core import TyperGroup, TyperOption

from seawall import __version__
from seawall.errors import exit_code_table
from seawall.runner.common import State, json_error
from seawall.runner.suggest import suggest

EPILOG = "Exit codes:\n\n" + "\n\n".join(exit_code_table().splitlines())


class SeawallGroup(TyperGroup):
    """A command group whose "no such command" suggests something sensible or nothing."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click_exc.UsageError as exc:
            if args and not exc.message.rstrip().endswith("?"):
                hint = suggest(args[0], _command_names(self, ctx))
                if hint:
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {hint}?"
            raise


def _command_names(group: TyperGroup, ctx: click.Context) -> list[str]:
    """Every command path under ``group``: ``prune``, ``postgres list`` …"""
    names: list[str] = []
    for name in group.list_commands(ctx):
        names.append(name)
        sub = group.get_command(ctx, name)
        if isinstance(sub, TyperGroup):
            names.extend(f"{name} {inner}" for inner in sub.list_commands(ctx))
    return names


app = typer.Typer(
    name="seawall",
    cls=SeawallGroup,
    help="Automated backup and disaster recovery for PostgreSQL and Qdrant.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    suggest_commands=False,
)
postgres_app = typer.Typer(
    cls=SeawallGroup,
    help="PostgreSQL: logical dumps, base backups, WAL archiving, PITR.",
    no_args_is_help=True,
    suggest_commands=False,
)
qdrant_app = typer.Typer(
    cls=SeawallGroup,
    help="Qdrant: collection snapshots, verify, restore.",
    no_args_is_help=True,
    suggest_commands=False,
)
app.add_typer(postgres_app, name="postgres")
app.add_typer(qdrant_app, name="qdrant")

#: (typer app, command name, module under seawall.runner, function name)
COMMANDS: list[tuple[typer.Typer, str, str, str]] = [
    (app, "init", "init_cmd", "init"),
    (app, "keygen", "keygen", "keygen"),
    (app, "demo", "demo", "demo"),
    (app, "prune", "prune", "prune"),
    (app, "status", "status", "status"),
    (app, "check", "check", "check"),
    (app, "backup", "backup_all", "backup_all"),
    (app, "exporter", "exporter_cmd", "exporter"),
    (app, "pin", "pin", "pin"),
    (app, "unpin", "unpin", "unpin"),
    (app, "forget", "forget", "forget"),
    (app, "info", "info", "info"),
    (app, "drill", "drill", "drill"),
    (app, "sync", "sync", "sync"),
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
        target.command(name)(getattr(mod, func))


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


def _walk(command: click.Command) -> Iterator[click.Command]:
    yield command
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            yield from _walk(sub)


def build() -> click.Command:
    """The click command tree, with flags shown without a ``<bool>`` type."""
    root = typer.main.get_command(app)
    for command in _walk(root):
        command.get_help_option(click.Context(command))  # cached: --help is a flag too
        params = [*command.params, command._help_option]
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag:
                param.metavar = ""
    return root


def run(argv: list[str]) -> int:
    """Run the app on ``argv`` and return the exit code (never raises SystemExit).

    With ``--json`` a command-line error (an unknown option, a missing
    argument) prints the same JSON error object as a failing command.
    """
    State.json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    State.printed_json = False
    root = build()
    try:
        result = root.main(args=argv, prog_name="seawall", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:  # typer has printed the help
        return exc.exit_code
    except click_exc.ClickException as exc:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
        if State.json:
            json_error(exc.format_message(), exc.exit_code, "usage")
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except SystemExit as exc:
        code: Any = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    # non-standalone click returns the code of a typer.Exit raised by a command
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
