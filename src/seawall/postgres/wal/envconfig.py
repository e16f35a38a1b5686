"""A light reader of the environment for the WAL hot path (no pydantic).

Why a second reader: ``archive_command`` runs ``wal-push`` once per WAL
segment, and importing pydantic-settings costs more than the whole push of a
segment should. This module reads the *same* variables as
:mod:`seawall.settings` (``SEAWALL_``-prefixed name first, then the legacy
name, then the ``*_FILE`` variant of a secret) for the handful of options the
WAL commands need. It is a deliberate duplication of ``settings.py``:
any change to the names or precedence of ``BACKUP_DIR``, ``COMPRESSION``,
``COMPRESSION_LEVEL``, ``COMPRESSION_THREADS``, ``ENCRYPTION``,
``ENCRYPTION_KEY(_FILE)``, ``ENCRYPTION_RECIPIENTS(_FILE)``,
``ENCRYPTION_IDENTITY(_FILE)``, ``ENCRYPTION_IDENTITY_FILES`` or
``PG_CLUSTER_NAME`` there must be made here too.
tests/unit/test_wal_envconfig.py asserts that both readers agree.

The optional TOML file (``SEAWALL_CONFIG``) is read with :mod:`tomllib` for
the same keys, below the environment, as in settings.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from seawall.errors import ConfigError
from seawall.pipeline.keys import KeyRing
from seawall.pipeline.stream import PipelineSpec

_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n", ""}
_COMPRESSIONS = ("zstd", "gzip", "none")


@dataclass(frozen=True)
class WalConfig:
    """What wal-push / wal-fetch need from the configuration."""

    backup_dir: Path
    cluster: str
    compression: str = "zstd"
    compression_level: int | None = None
    compression_threads: int = 0
    encryption: bool = False
    keys: KeyRing = field(default_factory=KeyRing)

    def spec(self) -> PipelineSpec:
        """How WAL is stored (same rule as Context.spec)."""
        return PipelineSpec(
            compression=self.compression,
            level=self.compression_level,
            threads=self.compression_threads,
            keys=self.keys if self.encryption else None,
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.toml: dict[str, object] = {}
        path = env.get("SEAWALL_CONFIG")
        if path:
            import tomllib  # only when a config file is used: import time matters here

            try:
                with open(path, "rb") as fh:
                    self.toml = {k.lower(): v for k, v in tomllib.load(fh).items()}
            except OSError as exc:
                raise ConfigError(
                    f"invalid configuration: SEAWALL_CONFIG: cannot read {path} ({exc.strerror})"
                ) from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(
                    f"invalid configuration: SEAWALL_CONFIG: {path} is not valid TOML ({exc})"
                ) from exc

    def get(self, field_name: str, *legacy: str) -> str | None:
        """``SEAWALL_<FIELD>``, then legacy names, then the field name (any case)."""
        names = (f"SEAWALL_{field_name.upper()}", *legacy, field_name)
        lowered = {k.lower(): v for k, v in self.env.items()}
        for name in names:
            if name in self.env:
                return self.env[name]
            if name.lower() in lowered:
                return lowered[name.lower()]
        return None

    def secret(self, field_name: str, legacy: str, file_vars: tuple[str, ...]) -> str | None:
        value = self.get(field_name, legacy)
        if value is not None:
            return value
        for var in file_vars:
            path = self.env.get(var)
            if not path:
                continue
            try:
                return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(
                    f"invalid configuration: {var}: cannot read secret file "
                    f"{path} ({exc.strerror}); point it at a readable file"
                ) from exc
        toml_value = self.toml.get(field_name)
        return None if toml_value is None else str(toml_value)

    def value(self, field_name: str, *legacy: str) -> object | None:
        env_value = self.get(field_name, *legacy)
        if env_value is not None:
            return env_value
        return self.toml.get(field_name)


def _as_bool(name: str, value: object | None, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"invalid configuration: {name}: expected true or false (got {text[:20]!r})")


def _as_int(name: str, value: object | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(
            f"invalid configuration: {name}: expected an integer (got {str(value)[:20]!r})"
        ) from None


def _as_list(value: object | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        import json

        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    return [item for item in text.replace(",", " ").split() if item]


def load_wal_config(env: Mapping[str, str] | None = None) -> WalConfig:
    """Read the WAL commands' options from ``env`` (default: os.environ)."""
    r = _Reader(os.environ if env is None else env)
    backup_dir = r.value("backup_dir", "BACKUP_DIR")
    compression = str(r.value("compression", "COMPRESSION") or "zstd").strip().lower()
    if compression not in _COMPRESSIONS:
        raise ConfigError(
            f"invalid configuration: COMPRESSION: expected one of zstd, gzip, none "
            f"(got {compression[:20]!r})"
        )
    level = _as_int("COMPRESSION_LEVEL", r.value("compression_level", "COMPRESSION_LEVEL"))
    threads = _as_int("COMPRESSION_THREADS", r.value("compression_threads", "COMPRESSION_THREADS"))
    encryption = _as_bool("ENCRYPTION", r.value("encryption", "ENCRYPTION"), False)
    key = r.secret(
        "encryption_key", "ENCRYPTION_KEY", ("SEAWALL_ENCRYPTION_KEY_FILE", "ENCRYPTION_KEY_FILE")
    )
    identity = r.secret(
        "encryption_identity",
        "ENCRYPTION_IDENTITY",
        ("SEAWALL_ENCRYPTION_IDENTITY_FILE", "ENCRYPTION_IDENTITY_FILE"),
    )
    recipients = _as_list(r.value("encryption_recipients", "ENCRYPTION_RECIPIENTS"))
    recipients_file = r.value("encryption_recipients_file", "ENCRYPTION_RECIPIENTS_FILE")
    identity_files = _as_list(r.value("encryption_identity_files", "ENCRYPTION_IDENTITY_FILES"))
    cluster = str(r.value("pg_cluster_name", "PG_CLUSTER_NAME") or "main")
    if encryption and not (recipients or recipients_file or key):
        raise ConfigError(
            "invalid configuration: ENCRYPTION is on but no key is set: set ENCRYPTION_RECIPIENTS "
            "(age public keys, see `seawall keygen`) or ENCRYPTION_KEY"
        )
    keys = KeyRing.build(
        key=key,
        recipients=recipients,
        recipients_file=Path(str(recipients_file)) if recipients_file else None,
        identity=identity,
        identity_files=[Path(p) for p in identity_files],
    )
    return WalConfig(
        backup_dir=Path(str(backup_dir)) if backup_dir else Path("/backups"),
        cluster=cluster,
        compression=compression,
        compression_level=level,
        compression_threads=threads or 0,
        encryption=encryption,
        keys=keys,
    )
