"""Configuration: operator variables, precedence, *_FILE secrets, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.errors import ConfigError
from seawall.settings import load_settings

SECRET = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(
            ("SEAWALL_", "DB_", "PG", "QDRANT_", "RETENTION_", "ENCRYPTION")
        ) or key in (
            "BACKUP_DIR",
            "COMPRESSION",
            "VERIFY_BACKUP",
            "DATABASES",
            "LOG_FILE",
        ):
            monkeypatch.delenv(key, raising=False)


def test_operator_variables_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUP_DIR", "/srv/backups")
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("DB_PORT", "6543")
    monkeypatch.setenv("DB_NAME", "aidb")
    monkeypatch.setenv("RETENTION_DAYS", "9")
    monkeypatch.setenv("COMPRESSION", "gzip")
    monkeypatch.setenv("VERIFY_BACKUP", "false")
    monkeypatch.setenv("QDRANT_HOST", "qdrant")
    s = load_settings()
    assert s.backup_dir == Path("/srv/backups")
    assert s.postgres_dir == Path("/srv/backups/postgresql")
    assert (s.db_host, s.db_port, s.db_name) == ("db.internal", 6543, "aidb")
    assert s.retention_days == 9 and s.compression == "gzip" and s.verify_backup is False
    assert s.qdrant_base_url == "http://qdrant:6333"


def test_precedence_cli_over_prefixed_over_legacy_over_libpq(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "seawall.toml"
    cfg.write_text('db_host = "from-file"\ndb_port = 1111\ndb_name = "filedb"\n')
    monkeypatch.setenv("SEAWALL_CONFIG", str(cfg))
    assert load_settings().db_host == "from-file"
    monkeypatch.setenv("PGHOST", "from-libpq")
    assert load_settings().db_host == "from-libpq"
    monkeypatch.setenv("DB_HOST", "from-legacy")
    assert load_settings().db_host == "from-legacy"
    monkeypatch.setenv("SEAWALL_DB_HOST", "from-prefixed")
    assert load_settings().db_host == "from-prefixed"
    assert load_settings(db_host="from-cli").db_host == "from-cli"
    assert load_settings(db_host=None).db_host == "from-prefixed"
    assert load_settings().db_name == "filedb"


def test_secret_file_variants(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(secret_file))
    s = load_settings()
    assert s.db_password is not None and s.db_password.get_secret_value() == SECRET
    assert SECRET not in repr(s) and SECRET not in str(s)


def test_missing_secret_file_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_API_KEY_FILE", "/nonexistent/key")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "QDRANT_API_KEY_FILE" in str(exc.value) and exc.value.exit_code == 2


def test_invalid_config_lists_every_bad_field_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DB_PORT", "not-a-port")
    monkeypatch.setenv("COMPRESSION", "lz4")
    monkeypatch.setenv("RETENTION_WEEKS", "-3")
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    monkeypatch.setenv("PITR_WINDOW", "soon")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    msg = str(exc.value)
    for name in ("DB_PORT", "COMPRESSION", "RETENTION_WEEKS", "PITR_WINDOW"):
        assert name in msg
    assert SECRET not in msg
    assert "\n" not in msg


def test_encryption_on_without_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCRYPTION", "true")
    with pytest.raises(ConfigError, match="ENCRYPTION_RECIPIENTS"):
        load_settings()


def test_lists_and_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASES", "app, billing  audit")
    monkeypatch.setenv("PITR_WINDOW", "36h")
    s = load_settings()
    assert s.databases == ["app", "billing", "audit"]
    assert s.pitr_window.total_seconds() == 36 * 3600
    monkeypatch.setenv("DATABASES", '["x", "y"]')
    assert load_settings().target_databases() == ["x", "y"]


def test_retention_overrides_from_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from seawall.context import Context

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[retention_overrides.qdrant]\ndaily = 3\n"
        '[retention_overrides."postgresql/logical/audit"]\nyearly = -1\nmonthly = 24\n'
    )
    monkeypatch.setenv("SEAWALL_CONFIG", str(cfg))
    ctx = Context(load_settings())
    assert ctx.retention_policy("qdrant", "snapshot", "docs").daily == 3
    audit = ctx.retention_policy("postgresql", "logical", "audit")
    assert (audit.yearly, audit.monthly, audit.daily) == (-1, 24, 7)
    assert ctx.retention_policy("postgresql", "logical", "app").monthly == 12
