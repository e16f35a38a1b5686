"""A passphrase ENCRYPTION_KEY beside ENCRYPTION_RECIPIENTS is refused (exit 2).

Before, the passphrase was silently ignored (X25519 recipients win): an
operator who set it believed it protected the backups. Refused in Settings
and in the WAL commands' own reader; an age secret key there is not
ambiguous (identity plus its recipient) and stays accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.errors import ConfigError
from seawall.pipeline.keys import generate_identity
from seawall.postgres.wal.envconfig import load_wal_config
from seawall.settings import load_settings

PASSPHRASE = "correct horse battery staple 42"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("SEAWALL_", "ENCRYPTION", "DB_", "PG")):
            monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("clean_env")
def test_passphrase_beside_recipients_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _, public = generate_identity()
    monkeypatch.setenv("ENCRYPTION", "true")
    monkeypatch.setenv("ENCRYPTION_RECIPIENTS", public)
    monkeypatch.setenv("ENCRYPTION_KEY", PASSPHRASE)
    with pytest.raises(ConfigError, match="passphrase silently ignored") as err:
        load_settings()
    assert PASSPHRASE not in str(err.value) and err.value.exit_code == 2
    env = {"BACKUP_DIR": "/nonexistent", "ENCRYPTION": "true", "ENCRYPTION_RECIPIENTS": public}
    with pytest.raises(ConfigError, match="passphrase silently ignored"):
        load_wal_config({**env, "ENCRYPTION_KEY": PASSPHRASE})
    # not ambiguous: an age secret key (identity + its recipient), or no encryption
    secret, _ = generate_identity()
    monkeypatch.setenv("ENCRYPTION_KEY", secret)
    assert load_settings().encryption
    load_wal_config({**env, "ENCRYPTION_KEY": secret})
    monkeypatch.setenv("ENCRYPTION_KEY", PASSPHRASE)
    monkeypatch.setenv("ENCRYPTION", "false")
    assert not load_settings().encryption


def test_passphrase_beside_recipients_cli_exit_2(tmp_path: Path) -> None:
    _, public = generate_identity()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BACKUP_DIR": str(tmp_path),
        "ENCRYPTION": "true",
        "ENCRYPTION_RECIPIENTS": public,
        "ENCRYPTION_KEY": PASSPHRASE,
    }
    seawall = str(Path(sys.executable).parent / "seawall")
    res = subprocess.run(
        [seawall, "postgres", "backup"], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "ENCRYPTION_RECIPIENTS" in res.stderr
    assert PASSPHRASE not in res.stderr + res.stdout


def test_wal_push_refuses_passphrase_beside_recipients(tmp_path: Path) -> None:
    """The lean wal-push path hands it to the general one, which refuses it
    before anything is stored (the WAL commands read the environment themselves)."""
    _, public = generate_identity()
    segment = tmp_path / "000000010000000000000001"
    segment.write_bytes(bytes(16 << 20))
    archive = tmp_path / "backups"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BACKUP_DIR": str(archive),
        "ENCRYPTION": "true",
        "ENCRYPTION_RECIPIENTS": public,
        "ENCRYPTION_KEY": PASSPHRASE,
    }
    seawall = str(Path(sys.executable).parent / "seawall")
    res = subprocess.run(
        [seawall, "postgres", "wal-push", str(segment)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    assert "passphrase silently ignored" in res.stderr and PASSPHRASE not in res.stderr
    assert not archive.exists() or not any(p.is_file() for p in archive.rglob("*"))
