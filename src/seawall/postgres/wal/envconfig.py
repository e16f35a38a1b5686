"""The WAL commands' configuration: the light reader's values, with keys parsed.

Why not settings.py: ``archive_command`` runs ``wal-push`` once per WAL
segment, and importing pydantic-settings costs more than the whole push of
a segment should. The environment (and the optional TOML file) is read by
the one light reader, :mod:`seawall.walcore.env`, which settings.py is
tested against (tests/unit/test_walcore_env.py); this module reads nothing
itself. It adds what the general wal-push/wal-fetch need beyond the raw
values: the parsed ``KeyRing``, the refusals of a key configuration that
settings.py also refuses (tests/unit/test_wal_envconfig.py), and the
``PipelineSpec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from seawall.errors import ConfigError
from seawall.pipeline.keys import AMBIGUOUS_KEYS, KeyRing, is_ambiguous
from seawall.pipeline.store import PipelineSpec
from seawall.storage.base import Storage
from seawall.walcore.env import WalEnv, WalEnvError, read_wal_env


@dataclass(frozen=True)
class WalConfig:
    """What wal-push / wal-fetch need from the configuration."""

    #: the repository as BACKUP_DIR gives it: an absolute path or ``s3://bucket/prefix``
    backup_dir: str
    cluster: str
    compression: str = "zstd"
    compression_level: int | None = None
    compression_threads: int = 0
    encryption: bool = False
    keys: KeyRing = field(default_factory=KeyRing)

    @cached_property
    def storage(self) -> Storage:
        """The repository, from the one factory (a local directory or object storage);
        built once (an S3 client costs tens of ms, the read-ahead daemon asks often)."""
        from seawall.storage.factory import open_storage

        return open_storage(self.backup_dir)

    def spec(self) -> PipelineSpec:
        """How WAL is stored (same rule as Context.spec)."""
        return PipelineSpec(
            compression=self.compression,
            level=self.compression_level,
            threads=self.compression_threads,
            keys=self.keys if self.encryption else None,
        )


def read_env(env: Mapping[str, str] | None = None) -> WalEnv:
    """:func:`read_wal_env` with its errors as ConfigError."""
    try:
        return read_wal_env(env)
    except WalEnvError as exc:
        raise ConfigError(str(exc)) from exc.__cause__


def config_from(raw: WalEnv) -> WalConfig:
    """Parse the keys of ``raw`` (ConfigError names the bad option)."""
    if raw.encryption and not (raw.recipients or raw.recipients_file or raw.key):
        raise ConfigError(
            "invalid configuration: ENCRYPTION is on but no key is set: set ENCRYPTION_RECIPIENTS "
            "(age public keys, see `seawall keygen`) or ENCRYPTION_KEY"
        )
    if is_ambiguous(raw.encryption, raw.key, bool(raw.recipients or raw.recipients_file)):
        raise ConfigError(f"invalid configuration: {AMBIGUOUS_KEYS}")
    keys = KeyRing.build(
        key=raw.key,
        recipients=raw.recipients,
        recipients_file=Path(raw.recipients_file) if raw.recipients_file else None,
        identity=raw.identity,
        identity_files=[Path(p) for p in raw.identity_files],
    )
    return WalConfig(
        backup_dir=raw.backup_dir,
        cluster=raw.cluster,
        compression=raw.compression,
        compression_level=raw.compression_level,
        compression_threads=raw.compression_threads,
        encryption=raw.encryption,
        keys=keys,
    )


def load_wal_config(env: Mapping[str, str] | None = None) -> WalConfig:
    """Read the WAL commands' options from ``env`` (default: os.environ)."""
    return config_from(read_env(env))
