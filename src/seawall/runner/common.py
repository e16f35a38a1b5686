"""What every command shares: settings from options, logging, error exits.

Commands are thin: they turn options into settings overrides, call one use
case, and print. :func:`command` wraps a command so that any
:class:`SeawallError` becomes its one-line message on stderr and its exit
code, and an unexpected exception becomes exit 1 with a one-line summary
(the traceback goes to the log at debug level, never to the user's face).

With ``--json`` a failure also prints one JSON object on stdout,
``{"error": {"kind", "message", "exit_code"}}`` (:func:`json_error`): a
script that parses stdout gets something to parse whether the command
succeeded or not, instead of an empty string and a guess from the exit code.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, ParamSpec, TypeVar

import typer

from seawall.errors import SeawallError
from seawall.log import get_logger, register_secret, scrub, setup_logging
from seawall.settings import Settings, load_settings, unknown_env_vars

P = ParamSpec("P")
R = TypeVar("R")


class State:
    """Global options given before the sub-command."""

    quiet: ClassVar[bool] = False
    overrides: ClassVar[dict[str, Any]] = {}
    #: ``--json`` was on the command line: failures print a JSON error object too.
    json: ClassVar[bool] = False
    #: The command already printed its JSON result (which carries the failures
    #: itself): a second document would make stdout unparseable.
    printed_json: ClassVar[bool] = False


#: Stable ``kind`` of a JSON error per exit code (docs/exit-codes.md).
ERROR_KINDS: dict[int, str] = {
    1: "failed",
    2: "config",
    3: "verification",
    4: "not_found",
    5: "source_unavailable",
    6: "locked",
    7: "storage",
    8: "decryption",
    9: "refused",
    10: "partial",
    11: "unhealthy",
    130: "interrupted",
}


def json_error(message: str, exit_code: int, kind: str | None = None) -> None:
    """Print the JSON error object of a failed ``--json`` command on stdout."""
    payload = {
        "kind": kind or ERROR_KINDS.get(exit_code, "failed"),
        "message": scrub(message),
        "exit_code": exit_code,
    }
    sys.stdout.write(json.dumps({"error": payload}, indent=2) + "\n")
    sys.stdout.flush()


def settings(**overrides: Any) -> Settings:
    """Load settings with CLI overrides and configure logging and redaction."""
    merged = {**State.overrides, **overrides}
    s = load_settings(**merged)
    for secret in (s.db_password, s.encryption_key, s.encryption_identity, s.qdrant_api_key):
        if secret is not None:
            register_secret(secret.get_secret_value())
    setup_logging(s.log_level, s.log_format, s.log_file, quiet=State.quiet)
    for name, close in unknown_env_vars():
        hint = f"; did you mean {close}?" if close else "; see docs/configuration.md"
        get_logger().warning(f"{name} is not a seawall setting and is ignored{hint}")
    return s


def fail(exc: SeawallError) -> None:
    typer.echo(f"seawall: error: {scrub(str(exc))}", err=True)
    if State.json and not State.printed_json:
        json_error(str(exc), exc.exit_code)
    raise typer.Exit(exc.exit_code)


def stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (``poll`` says POLLERR).

    Asked, rather than trusted from a BrokenPipeError alone, because a socket
    to a server can break the same way and that is a real failure.
    """
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Map SeawallError to its exit code and a one-line message (and JSON with --json)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if kwargs.get("json_out") or kwargs.get("as_json"):
            State.json = True
        try:
            return fn(*args, **kwargs)
        except SeawallError as exc:
            fail(exc)
            raise AssertionError("unreachable") from exc
        except KeyboardInterrupt:
            typer.echo("seawall: interrupted", err=True)
            if State.json:
                json_error("interrupted", 130)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if isinstance(exc, BrokenPipeError) and stdout_gone():
                # `seawall qdrant list | head -1`: the reader has what it wanted.
                # Python's own answer (docs/exit-codes.md), quietly; the work is done.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise typer.Exit(120) from None
            logger = get_logger()
            if logger.handlers:  # LOG_LEVEL=debug shows the traceback (log._exc_text)
                logger.debug("unexpected error", exc_info=True)
            elif (
                os.environ.get("SEAWALL_LOG_LEVEL") or os.environ.get("LOG_LEVEL", "")
            ).lower() == "debug":
                traceback.print_exc()  # failed before settings configured logging
            typer.echo(
                f"seawall: internal error: {type(exc).__name__}: {scrub(str(exc))[:300]} "
                "(please report it; run with LOG_LEVEL=debug for the traceback)",
                err=True,
            )
            if State.json:
                json_error(f"internal error: {type(exc).__name__}: {str(exc)[:300]}", 1, "internal")
            raise typer.Exit(1) from exc

    return wrapper


def print_json(data: Any) -> None:
    State.printed_json = True
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


#: ``--verify/--no-verify`` of every backup command (default: VERIFY_BACKUP).
VerifyAfter = Annotated[
    bool | None,
    typer.Option("--verify/--no-verify", help="Verify right after (default VERIFY_BACKUP)."),
]


#: ``--max-rate`` of every backup command (default MAX_RATE, see storage/throttle.py).
MaxRate = Annotated[
    str | None,
    typer.Option(
        "--max-rate",
        help="Limit what the backup writes to this many bytes per second, e.g. 50MiB "
        "(default MAX_RATE; 0 = unlimited).",
    ),
]


def rate_override(max_rate: str | None) -> dict[str, Any]:
    """The settings override of ``--max-rate`` (validated with MAX_RATE's own rules)."""
    return {} if max_rate is None else {"max_rate": max_rate}
