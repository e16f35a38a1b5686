"""Logging: stderr (text on a TTY, JSON lines otherwise) and an optional file.

CronJob logs are read by machines (Loki, CloudWatch), so off a TTY every line
is a JSON object. ``LOG_FILE`` adds a file (the operators'
/var/log/postgresql-backup.log). A redaction filter scrubs every configured
secret from every record as a last line of defence: secrets are never passed
to the logger on purpose, and this catches the accident.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOGGER_NAME = "seawall"
_SECRETS: set[str] = set()

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def register_secret(value: str | None) -> None:
    """Remember a secret so that it is scrubbed from any log output."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "********")
    return text


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = scrub(record.getMessage())
            record.args = ()
        return True


def _exc_text(fmt: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The exception of a record: the whole traceback under LOG_LEVEL=debug
    (what docs/configuration.md promises for internal errors), else its last
    line for warnings and errors, else nothing."""
    if not record.exc_info:
        return None
    text = fmt.formatException(record.exc_info)
    if logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG):
        return text
    return text.splitlines()[-1] if record.levelno >= logging.WARNING else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                payload[key] = value if isinstance(value, int | float | bool | None) else str(value)
        exc = _exc_text(self, record)
        if exc is not None:
            payload["exc"] = exc
        return scrub(json.dumps(payload, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {
            k: v for k, v in vars(record).items() if k not in _STD_ATTRS and not k.startswith("_")
        }
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        line = f"{ts} {record.levelname.lower():<7} {record.getMessage()} {tail}".rstrip()
        exc = _exc_text(self, record)
        if exc is not None:
            line += f"\n{exc}" if "\n" in exc else f" exc={exc}"
        return scrub(line)


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler for whatever ``sys.stderr`` is when a record is emitted.

    A progress bar (:mod:`seawall.progress`) swaps ``sys.stderr`` for a proxy
    that prints each line above the bar; a handler holding the original
    stream would write over the bar's line instead.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def setup_logging(
    level: str = "info",
    fmt: str = "auto",
    log_file: Path | None = None,
    quiet: bool = False,
) -> logging.Logger:
    """Configure the ``seawall`` logger once per process."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(level.upper())
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    stderr = CurrentStderrHandler()
    stderr.setFormatter(JsonFormatter() if use_json else TextFormatter())
    stderr.addFilter(_Redact())
    if quiet:
        stderr.setLevel(logging.WARNING)
    logger.addHandler(stderr)
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(log_file)
        except OSError as exc:
            logger.warning("cannot open LOG_FILE %s (%s); logging to stderr only", log_file, exc)
        else:
            fh.setFormatter(JsonFormatter())
            fh.addFilter(_Redact())
            logger.addHandler(fh)
    return logger


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)
