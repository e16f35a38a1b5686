"""The one light reader of the WAL options (walcore.env) agrees with settings.py.

walcore.env reads, without pydantic, a few of the variables settings.py
reads (the WAL commands run once per segment and cannot afford
pydantic-settings). Three things must stay equal, or wal-push would archive
into another place, another format or with other keys than ``seawall
backup`` expects:

* the names: for every option the light reader reads, the same variables
  in the same order (``SEAWALL_<FIELD>``, the legacy name, the field name)
  and the same ``*_FILE`` variables of secrets;
* the defaults (an empty environment);
* the parsing of each value, over combinations of variables, case,
  precedence, ``*_FILE`` secrets and the TOML file; and what one refuses as
  unparsable, the other refuses too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices

from seawall import settings as settings_module
from seawall.errors import ConfigError
from seawall.pipeline.keys import generate_identity
from seawall.settings import Settings, load_settings
from seawall.walcore.env import (
    LEGACY_NAMES,
    SECRET_FILE_VARS,
    WalEnv,
    WalEnvError,
    read_value,
    read_wal_env,
)

SECRET, PUBLIC = generate_identity()
SECRET2, PUBLIC2 = generate_identity()


#: the light reader's option names whose settings.py field is named otherwise
#: (BACKUP_DIR is settings.py's ``repository``: a path or an ``s3://`` URL)
FIELD_OF = {"backup_dir": "repository"}


def light_view(raw: WalEnv) -> dict[str, Any]:
    """The light reader's result keyed by the light reader's option names."""
    return {
        "backup_dir": Path(raw.backup_dir),
        "pg_cluster_name": raw.cluster,
        "compression": raw.compression,
        "compression_level": raw.compression_level,
        "compression_threads": raw.compression_threads,
        "encryption": raw.encryption,
        "encryption_key": raw.key,
        "encryption_identity": raw.identity,
        "encryption_recipients": raw.recipients,
        "encryption_recipients_file": (Path(raw.recipients_file) if raw.recipients_file else None),
        "encryption_identity_files": [Path(p) for p in raw.identity_files],
        "wal_read_ahead": raw.read_ahead,
        "wal_read_ahead_max_mb": raw.read_ahead_max_mb,
        "wal_read_ahead_idle": raw.read_ahead_idle,
        "wal_push_ahead": raw.push_ahead,
        "wal_push_ahead_idle": raw.push_ahead_idle,
    }


def full_view(s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LEGACY_NAMES:
        value = getattr(s, FIELD_OF.get(name, name))
        out[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    out["backup_dir"] = Path(out["backup_dir"])  # compared as paths, as before the rename
    return out


def test_same_variable_names() -> None:
    assert set(light_view(read_wal_env({}))) == set(LEGACY_NAMES)
    for name, legacy in LEGACY_NAMES.items():
        alias = Settings.model_fields[FIELD_OF.get(name, name)].validation_alias
        assert isinstance(alias, AliasChoices), name
        assert list(alias.choices) == [f"SEAWALL_{name.upper()}", legacy, name], name
    for name, file_vars in SECRET_FILE_VARS.items():
        assert settings_module.SECRET_FILE_VARS[name] == file_vars, name
    # every secret the light reader reads has its *_FILE variants read too
    assert {n for n in LEGACY_NAMES if n in settings_module.SECRET_FIELDS} == set(SECRET_FILE_VARS)


def _files(tmp: Path) -> dict[str, Path]:
    files = {
        "ident": tmp / "id.txt",
        "recips": tmp / "recipients.txt",
        "key": tmp / "key",
        "key2": tmp / "key2",
        "toml": tmp / "seawall.toml",
    }
    files["ident"].write_text(f"# comment\n{SECRET2}\n")
    files["recips"].write_text(f"{PUBLIC}\n{PUBLIC2}\n")
    files["key"].write_text(SECRET + "\n")
    files["key2"].write_text(SECRET2 + "\r\n")
    files["toml"].write_text(
        'backup_dir = "/from-toml"\npg_cluster_name = "tomlcluster"\n'
        'compression = "gzip"\ncompression_level = 4\nwal_read_ahead = 3\n'
        f'encryption = true\nencryption_recipients = ["{PUBLIC}", "{PUBLIC2}"]\n'
    )
    return files


GOOD: list[dict[str, str]] = [
    {},
    {"BACKUP_DIR": "/b"},
    {"BACKUP_DIR": "/b", "SEAWALL_BACKUP_DIR": "/s"},
    {"backup_dir": "/lower"},
    {"BaCkUp_DiR": "/mixed"},
    {"seawall_backup_dir": "/s-lower", "BACKUP_DIR": "/b"},
    {"BACKUP_DIR": "/trailing/"},
    {"COMPRESSION": "GZIP", "COMPRESSION_LEVEL": "5", "COMPRESSION_THREADS": "2"},
    {"COMPRESSION": " zstd ", "COMPRESSION_LEVEL": "19"},
    {"SEAWALL_COMPRESSION": "none", "COMPRESSION": "gzip"},
    {"COMPRESSION_THREADS": "0"},
    {"PG_CLUSTER_NAME": "prod"},
    {"PG_CLUSTER_NAME": "prod", "SEAWALL_PG_CLUSTER_NAME": "other"},
    {"pg_cluster_name": "lower"},
    {"ENCRYPTION": "true", "ENCRYPTION_RECIPIENTS": f"{PUBLIC},{PUBLIC2}"},
    {"ENCRYPTION": "yes", "ENCRYPTION_RECIPIENTS": f"{PUBLIC} {PUBLIC2}"},
    {"ENCRYPTION": "ON", "ENCRYPTION_RECIPIENTS": f"  {PUBLIC} ,, {PUBLIC2}  "},
    {"ENCRYPTION": "t", "ENCRYPTION_RECIPIENTS": f'["{PUBLIC}", "{PUBLIC2}"]'},
    {"ENCRYPTION": "1", "ENCRYPTION_RECIPIENTS_FILE": "{recips}"},
    {"ENCRYPTION": "y", "ENCRYPTION_KEY": SECRET},
    {"ENCRYPTION": "true", "ENCRYPTION_KEY_FILE": "{key}"},
    {"ENCRYPTION": "true", "ENCRYPTION_KEY_FILE": "{key}", "SEAWALL_ENCRYPTION_KEY_FILE": "{key2}"},
    {"ENCRYPTION": "true", "ENCRYPTION_KEY_FILE": "{key}", "ENCRYPTION_KEY": SECRET2},
    {"ENCRYPTION": "true", "ENCRYPTION_KEY": "a passphrase"},
    {"ENCRYPTION": "false", "ENCRYPTION_KEY": SECRET},
    {"ENCRYPTION": "0"},
    {"ENCRYPTION": "no"},
    {"ENCRYPTION": "OFF"},
    {"ENCRYPTION": "f"},
    {"ENCRYPTION": "N"},
    {"ENCRYPTION_IDENTITY": SECRET},
    {"ENCRYPTION_IDENTITY_FILE": "{ident}"},
    {"SEAWALL_ENCRYPTION_IDENTITY_FILE": "{ident}", "ENCRYPTION_IDENTITY": SECRET},
    {"ENCRYPTION_IDENTITY_FILES": "{ident}"},
    {"ENCRYPTION_IDENTITY_FILES": "{ident},{key} {key2}"},
    {"ENCRYPTION_IDENTITY_FILES": '["{ident}", "{key}"]'},
    {"WAL_READ_AHEAD": "0"},
    {"SEAWALL_WAL_READ_AHEAD": "3", "WAL_READ_AHEAD": "5"},
    {"WAL_READ_AHEAD_MAX_MB": "64", "WAL_READ_AHEAD_IDLE": "5"},
    {"seawall_wal_read_ahead_idle": "7"},
    {"SEAWALL_CONFIG": "{toml}"},
    {"SEAWALL_CONFIG": "{toml}", "COMPRESSION": "zstd", "COMPRESSION_LEVEL": "3"},
    {"SEAWALL_CONFIG": "{toml}", "ENCRYPTION": "false", "PG_CLUSTER_NAME": "env"},
    {"SEAWALL_CONFIG": "{toml}", "ENCRYPTION_RECIPIENTS": PUBLIC},
]

BAD: list[dict[str, str]] = [
    {"COMPRESSION": "lz4"},
    {"ENCRYPTION": "maybe"},
    {"COMPRESSION_LEVEL": "high"},
    {"COMPRESSION_THREADS": "x"},
    {"COMPRESSION_THREADS": "-1"},
    {"WAL_READ_AHEAD": "-1"},
    {"WAL_READ_AHEAD": "x"},
    {"WAL_READ_AHEAD_MAX_MB": "0"},
    {"WAL_READ_AHEAD_IDLE": "0"},
    {"ENCRYPTION_KEY_FILE": "{missing}"},
    {"ENCRYPTION_IDENTITY_FILE": "{missing}"},
    {"SEAWALL_CONFIG": "{missing}"},
    {"SEAWALL_CONFIG": "{badtoml}"},
]


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for var in list(os.environ):
        monkeypatch.delenv(var)
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def _fill(case: dict[str, str], tmp: Path) -> dict[str, str]:
    files = {name: str(path) for name, path in _files(tmp).items()}
    files["missing"] = str(tmp / "does-not-exist")
    bad = tmp / "bad.toml"
    bad.write_text("backup_dir = \n")
    files["badtoml"] = str(bad)
    return {k: v.format(**files) for k, v in case.items()}


@pytest.mark.parametrize("case", GOOD, ids=[",".join(c) or "empty" for c in GOOD])
def test_same_values_and_defaults(
    case: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _fill(case, tmp_path)
    _set_env(monkeypatch, env)
    assert light_view(read_wal_env(env)) == full_view(load_settings()), env


def test_read_value_is_what_read_wal_env_reads(tmp_path: Path) -> None:
    for case in GOOD:
        env = _fill(case, tmp_path)
        raw = read_wal_env(env)
        value = read_value("backup_dir", env)
        assert (str(value) if value else "/backups") == raw.backup_dir, env
        cluster = read_value("pg_cluster_name", env)
        assert (str(cluster) if cluster else "main") == raw.cluster, env


@pytest.mark.parametrize("case", BAD, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in BAD])
def test_same_refusals(
    case: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _fill(case, tmp_path)
    _set_env(monkeypatch, env)
    with pytest.raises(WalEnvError):
        read_wal_env(env)
    with pytest.raises(ConfigError):
        load_settings()
