"""The log filter scrubs every registered secret (design invariant 7, last line of defence).

Secrets should never reach a log call in the first place; this is the net
under that rule. Checked against the bug it guards: with ``scrub`` made a
no-op, every case here fails.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from seawall import log as seawall_log

SECRET = "pw-s3cr3t-XYZZY"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(seawall_log, "_SECRETS", set())
    seawall_log.register_secret(SECRET)
    return SECRET


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secret_scrubbed_from_message_args_and_extras(
    registered: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    log_file = tmp_path / "seawall.log"
    logger = seawall_log.setup_logging(fmt=fmt, log_file=log_file)
    try:
        seawall_log.get_logger("test").warning(
            "connecting with %s failed", registered, extra={"dsn": f"postgres://u:{registered}@h"}
        )
        seawall_log.get_logger("test").error(f"inline {registered}")
    finally:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    for where, text in (("stderr", stderr.getvalue()), ("LOG_FILE", log_file.read_text())):
        assert "connecting with" in text and "inline" in text, where
        assert registered not in text, f"the secret reached {where}: {text}"
        assert "********" in text


def test_short_values_are_not_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrubbing "pw" would mangle every log line that contains those letters."""
    monkeypatch.setattr(seawall_log, "_SECRETS", set())
    seawall_log.register_secret("pw")
    seawall_log.register_secret(None)
    assert seawall_log.scrub("pw stays") == "pw stays"
