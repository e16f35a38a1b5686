"""The WAL hot path's light env reader agrees with settings.py.

envconfig.py duplicates, on purpose, the names and precedence of the few
options wal-push / wal-fetch need (pydantic-settings is too slow to import
once per WAL segment); this test is what keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.context import Context
from seawall.errors import ConfigError
from seawall.pipeline.keys import generate_identity
from seawall.postgres.physical.verify import wal_config
from seawall.postgres.wal.envconfig import load_wal_config
from seawall.settings import load_settings

SECRET, PUBLIC = generate_identity()
SECRET2, PUBLIC2 = generate_identity()


def _cases(tmp: Path) -> list[dict[str, str]]:
    ident = tmp / "id.txt"
    ident.write_text(f"# comment\n{SECRET2}\n")
    recips = tmp / "recipients.txt"
    recips.write_text(f"{PUBLIC}\n{PUBLIC2}\n")
    keyfile = tmp / "key"
    keyfile.write_text(SECRET + "\n")
    return [
        {},
        {"BACKUP_DIR": "/b"},
        {"BACKUP_DIR": "/b", "SEAWALL_BACKUP_DIR": "/s"},
        {"backup_dir": "/lower"},
        {"COMPRESSION": "gzip", "COMPRESSION_LEVEL": "5", "COMPRESSION_THREADS": "2"},
        {"SEAWALL_COMPRESSION": "none", "COMPRESSION": "gzip"},
        {"PG_CLUSTER_NAME": "prod"},
        {"PG_CLUSTER_NAME": "prod", "SEAWALL_PG_CLUSTER_NAME": "other"},
        {"ENCRYPTION": "true", "ENCRYPTION_RECIPIENTS": f"{PUBLIC},{PUBLIC2}"},
        {"ENCRYPTION": "yes", "ENCRYPTION_RECIPIENTS": f"{PUBLIC} {PUBLIC2}"},
        {"ENCRYPTION": "1", "ENCRYPTION_RECIPIENTS_FILE": str(recips)},
        {"ENCRYPTION": "on", "ENCRYPTION_KEY": SECRET},
        {"ENCRYPTION": "true", "ENCRYPTION_KEY_FILE": str(keyfile)},
        {"ENCRYPTION": "true", "ENCRYPTION_KEY": "a passphrase"},
        {"ENCRYPTION": "false", "ENCRYPTION_KEY": SECRET},
        {"ENCRYPTION_IDENTITY": SECRET},
        {"ENCRYPTION_IDENTITY_FILE": str(ident)},
        {"SEAWALL_ENCRYPTION_IDENTITY_FILE": str(ident), "ENCRYPTION_IDENTITY": SECRET},
        {"ENCRYPTION_IDENTITY_FILES": f"{ident}"},
        {"ENCRYPTION_RECIPIENTS": f'["{PUBLIC}"]', "ENCRYPTION": "TRUE"},
    ]


def test_both_readers_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for env in _cases(tmp_path):
        for var in list(__import__("os").environ):
            monkeypatch.delenv(var)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        light = load_wal_config(env)
        full = wal_config(Context(load_settings()))
        assert light.backup_dir == full.backup_dir, env
        assert light.cluster == full.cluster, env
        assert light.compression == full.compression, env
        assert light.compression_level == full.compression_level, env
        assert light.compression_threads == full.compression_threads, env
        assert light.encryption == full.encryption, env
        assert light.keys.recipients == full.keys.recipients, env
        assert set(light.keys.identities) == set(full.keys.identities), env
        assert light.keys.passphrase == full.keys.passphrase, env
        assert light.spec().suffix() == Context(load_settings()).spec.suffix(), env


def test_both_readers_refuse_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ({"ENCRYPTION": "true"}, {"COMPRESSION": "lz4"}, {"ENCRYPTION": "maybe"}):
        for var in list(__import__("os").environ):
            monkeypatch.delenv(var)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with pytest.raises(ConfigError):
            load_wal_config(env)
        with pytest.raises(ConfigError):
            load_settings()


def test_lean_push_reads_the_same_options(tmp_path: Path) -> None:
    """fastpush's own reading (recipients, level, threads, directory) agrees
    with load_wal_config wherever it does not hand over to the general path."""
    from seawall.postgres.wal import fastpush, lean

    handled = 0
    for env in _cases(tmp_path):
        full = load_wal_config(env)
        try:
            backup_dir, cluster, level, threads, recipients = fastpush._options(env)
        except lean.Fallback:
            # only configurations the lean path does not do: gzip/none, scrypt
            assert full.compression != "zstd" or (full.encryption and full.keys.mode != "x25519"), (
                env
            )
            continue
        handled += 1
        assert backup_dir == str(full.backup_dir), env
        assert cluster == full.cluster, env
        assert (level, threads) == (full.compression_level, full.compression_threads), env
        expected = list(full.keys.recipients) if full.encryption else []
        assert recipients == expected, env
    assert handled >= 10


def test_read_ahead_options_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """wal-fetch's read-ahead options: same names, defaults and lower bounds in both readers."""
    from seawall.walcore.env import WalEnvError, read_wal_env

    good = (
        {},
        {"WAL_READ_AHEAD": "0"},
        {"SEAWALL_WAL_READ_AHEAD": "3", "WAL_READ_AHEAD": "5"},
        {"WAL_READ_AHEAD_MAX_MB": "64", "WAL_READ_AHEAD_IDLE": "5"},
        {"seawall_wal_read_ahead_idle": "7"},
    )
    for env in good:
        for var in list(__import__("os").environ):
            monkeypatch.delenv(var)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        light, full = read_wal_env(env), load_settings()
        assert light.read_ahead == full.wal_read_ahead, env
        assert light.read_ahead_max_mb == full.wal_read_ahead_max_mb, env
        assert light.read_ahead_idle == full.wal_read_ahead_idle, env
    for env in ({"WAL_READ_AHEAD": "-1"}, {"WAL_READ_AHEAD_MAX_MB": "0"}, {"WAL_READ_AHEAD": "x"}):
        for var in list(__import__("os").environ):
            monkeypatch.delenv(var)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with pytest.raises(WalEnvError):
            read_wal_env(env)
        with pytest.raises(ConfigError):
            load_settings()


def test_push_ahead_options_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """wal-push's asynchronous archiving (ADR 0017): same names, defaults (off) and lower
    bounds in both readers; the hit path's own reading (pushahead.push_ahead) agrees on
    every valid value and treats an invalid one as off (the push itself then refuses it)."""
    from seawall.postgres.wal.pushahead import push_ahead
    from seawall.walcore.env import WalEnvError, read_wal_env

    good = (
        {},
        {"WAL_PUSH_AHEAD": "0"},
        {"SEAWALL_WAL_PUSH_AHEAD": "3", "WAL_PUSH_AHEAD": "5"},
        {"WAL_PUSH_AHEAD": "8", "WAL_PUSH_AHEAD_IDLE": "5"},
        {"seawall_wal_push_ahead_idle": "7"},
    )
    for env in good:
        for var in list(__import__("os").environ):
            monkeypatch.delenv(var)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        light, full = read_wal_env(env), load_settings()
        assert light.push_ahead == full.wal_push_ahead == push_ahead(env), env
        assert light.push_ahead_idle == full.wal_push_ahead_idle, env
    assert read_wal_env({}).push_ahead == 0  # off unless asked for
    for env in ({"WAL_PUSH_AHEAD": "-1"}, {"WAL_PUSH_AHEAD_IDLE": "0"}, {"WAL_PUSH_AHEAD": "x"}):
        for var in list(__import__("os").environ):
            monkeypatch.delenv(var)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with pytest.raises(WalEnvError):
            read_wal_env(env)
        with pytest.raises(ConfigError):
            load_settings()
        if "WAL_PUSH_AHEAD" in env:  # wal-push's own reader refuses it too, never "off"
            with pytest.raises(WalEnvError, match="WAL_PUSH_AHEAD"):
                push_ahead(env)
