"""The run context handed to every use case: settings plus what they imply.

Building storage, the catalog, the key ring and the pipeline spec from
settings happens once, here, so engines receive ready objects and tests can
build a Context directly without environment variables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

from seawall.catalog.store import Catalog
from seawall.errors import ConfigError
from seawall.log import get_logger
from seawall.pipeline.keys import KeyRing
from seawall.pipeline.store import PipelineSpec
from seawall.retention import EmptyPolicyError, InvalidPolicyError, Policy
from seawall.settings import Settings
from seawall.storage.base import Storage
from seawall.storage.factory import open_repository
from seawall.storage.repository import ensure_storage, require_storage
from seawall.units import human_size


@dataclass
class Context:
    settings: Settings

    @cached_property
    def storage(self) -> Storage:
        """The repository, built by the one factory (a local directory or object storage),
        wrapped with its ``MIRRORS`` when there are any (storage/mirror.py)."""
        s = self.settings
        if s.max_rate:
            get_logger().info(
                f"writes to {s.repository} limited to {human_size(s.max_rate)}/s (MAX_RATE)"
            )
        return open_repository(
            s.repository, s.mirrors, mirror_timeout=s.mirror_timeout, max_rate=s.max_rate
        )

    def require_repository(self) -> None:
        """Before reading: BACKUP_DIR must exist (a bucket must answer; see
        :mod:`seawall.storage.repository`)."""
        require_storage(self.storage)

    def ensure_repository(self) -> None:
        """Before writing: BACKUP_DIR exists, or only its own top directory is created."""
        ensure_storage(self.storage)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.storage)

    @cached_property
    def keys(self) -> KeyRing:
        s = self.settings
        files = list(s.encryption_identity_files)
        return KeyRing.build(
            key=s.encryption_key.get_secret_value() if s.encryption_key else None,
            recipients=s.encryption_recipients,
            recipients_file=s.encryption_recipients_file,
            identity=s.encryption_identity.get_secret_value() if s.encryption_identity else None,
            identity_files=files,
        )

    @cached_property
    def spec(self) -> PipelineSpec:
        s = self.settings
        return PipelineSpec(
            compression=s.compression,
            level=s.compression_level,
            threads=s.compression_threads,
            keys=self.keys if s.encryption else None,
        )

    def retention_policy(self, engine: str, kind: str, series: str) -> Policy:
        """The policy of one series: defaults, then engine/kind/series overrides.

        Override keys in the config file: ``"<engine>"``, ``"<engine>/<kind>"``
        or ``"<engine>/<kind>/<series>"``; the most specific wins.
        """
        try:
            return self._policy(engine, kind, series)
        except (EmptyPolicyError, InvalidPolicyError) as exc:
            raise ConfigError(f"invalid configuration: {exc}") from None

    def _policy(self, engine: str, kind: str, series: str) -> Policy:
        s = self.settings
        policy = Policy(
            last=s.retention_last,
            daily=s.retention_days,
            weekly=s.retention_weeks,
            monthly=s.retention_months,
            yearly=s.retention_years,
            tz=s.retention_tz,
            failed_grace=s.retention_failed_grace,
            require_verified=s.verify_backup,
        )
        for key in (engine, f"{engine}/{kind}", f"{engine}/{kind}/{series}"):
            override = s.retention_overrides.get(key)
            if override is not None:
                changes = {k: v for k, v in override.model_dump().items() if v is not None}
                policy = dataclasses.replace(policy, **changes)
        return policy
