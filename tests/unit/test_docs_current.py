"""Generated docs must match the code."""

from __future__ import annotations

from pathlib import Path

from seawall.settings_doc import render

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_doc_is_current() -> None:
    assert (ROOT / "docs/configuration.md").read_text() == render(), (
        "docs/configuration.md is stale: run .venv/bin/python -m seawall.settings_doc"
    )


def test_exit_code_doc_lists_every_error() -> None:
    from seawall.errors import ALL_ERRORS

    text = (ROOT / "docs/exit-codes.md").read_text()
    for cls in ALL_ERRORS:
        assert f"`{cls.__name__}`" in text and f"| {cls.exit_code} |" in text
