"""Settings behaviour from issue 12: engines by configuration, enums, typo warnings."""

from __future__ import annotations

import pytest

from seawall.errors import ConfigError
from seawall.settings import load_settings, unknown_env_vars


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("SEAWALL_", "DB_", "PG", "QDRANT_", "RETENTION_", "COMPRESSION")) or (
            key in ("ENGINES", "DATABASES", "LOG_LEVEL", "LOG_FORMAT")
        ):
            monkeypatch.delenv(key, raising=False)


def test_active_engines_follow_the_configured_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().active_engines() == ["postgres"]  # nothing configured: as before
    monkeypatch.setenv("QDRANT_URL", "http://q:6333")
    assert load_settings().active_engines() == ["qdrant"]
    monkeypatch.setenv("PGHOST", "db")
    assert load_settings().active_engines() == ["postgres", "qdrant"]
    monkeypatch.setenv("ENGINES", "qdrant")  # explicit wins
    assert load_settings().active_engines() == ["qdrant"]
    monkeypatch.setenv("ENGINES", "PostgreSQL, qdrant postgres")
    assert load_settings().active_engines() == ["postgres", "qdrant"]


def test_level_and_other_fields_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPRESSION", "GZIP")
    monkeypatch.setenv("COMPRESSION_LEVEL", "12")
    monkeypatch.setenv("RETENTION_DAYS", "-3")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "COMPRESSION_LEVEL: 12 is out of range for gzip (expected 1..9" in str(exc.value)
    assert "RETENTION_DAYS" in str(exc.value)


def test_unknown_seawall_variables_get_the_closest_name() -> None:
    env = {
        "SEAWALL_BACKUP_DIRR": "/x",
        "SEAWALL_BACKUP_DIR": "/x",
        "SEAWALL_DB_PASSWORD_FILE": "/f",
        "SEAWALL_CONFIG": "c.toml",
        "SEAWALL_TEST_ANYTHING": "1",
        "HOME": "/root",
    }
    assert unknown_env_vars(env) == [("SEAWALL_BACKUP_DIRR", "SEAWALL_BACKUP_DIR")]
