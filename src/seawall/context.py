"""The run context handed to every use case: settings plus what they imply.

Building storage, the catalog, the key ring and the pipeline spec from
settings happens once, here, so engines receive ready objects and tests can
build a Context directly without environment variables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import cast

from seawall.catalog.store import Catalog
from seawall.errors import ConfigError
from seawall.log import get_logger
from seawall.pipeline.keys import KeyRing
from seawall.pipeline.stream import PipelineSpec
from seawall.retention import EmptyPolicyError, InvalidPolicyError, Policy
from seawall.settings import Settings
from seawall.storage.local import LocalStorage
from seawall.storage.repository import ensure_repository, require_repository
from seawall.storage.throttle import throttle
from seawall.units import human_size


@dataclass
class Context:
    settings: Settings

    @cached_property
    def storage(self) -> LocalStorage:
        storage = LocalStorage(self.settings.backup_dir)
        # --- MAX_RATE (issue 14, i14-s3perf): belongs in seawall.storage.factory at
        # merge, around what open_storage() builds: ``throttle(storage, max_rate)``.
        # The cast only exists because this branch still types the repository as
        # LocalStorage; ThrottledStorage passes .path/.root through.
        if self.settings.max_rate:
            get_logger().info(
                f"writes to {storage.describe()} limited to "
                f"{human_size(self.settings.max_rate)}/s (MAX_RATE)"
            )
        return cast(LocalStorage, throttle(storage, self.settings.max_rate))

    def require_repository(self) -> None:
        """Before reading: BACKUP_DIR must exist (see :mod:`seawall.storage.repository`)."""
        require_repository(self.settings.backup_dir)

    def ensure_repository(self) -> None:
        """Before writing: BACKUP_DIR exists, or only its own top directory is created."""
        ensure_repository(self.settings.backup_dir)

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
