"""Configuration: one pydantic-settings model, every option defined once.

Why this shape: operators already run shell scripts driven by environment
variables (``BACKUP_DIR``, ``DB_HOST``, ``ENCRYPTION_KEY`` …) and libpq
variables (``PGHOST`` …). Those keep working unchanged. Every option also
has a ``SEAWALL_``-prefixed name (which wins when both are set), secrets
have ``*_FILE`` variants because Kubernetes mounts secrets as files, and an
optional TOML file (``SEAWALL_CONFIG``) carries what is awkward in env vars
(per-series retention overrides).

Precedence: command-line options > environment > ``*_FILE`` > config file >
defaults.

Secrets are ``SecretStr`` and never printed: not in errors, logs, manifests
or ``--help``. :func:`load_settings` turns a pydantic validation failure into
one :class:`~seawall.errors.ConfigError` listing every bad field and what is
expected, without echoing secret values. Checks that involve two fields
(``COMPRESSION_LEVEL`` against ``COMPRESSION``) are field validators reading
the earlier field, not model validators, because pydantic runs model
validators only when every field is valid: ``COMPRESSION_LEVEL=99
RETENTION_DAYS=-3`` must report both. Enumerated values (``COMPRESSION=LZ4``
…) are case-insensitive. A ``SEAWALL_*`` variable that is no option is
reported with the closest valid name (:func:`unknown_env_vars`) instead of
being silently ignored. How values are read (the sources) and how a bad one
is reported live in :mod:`seawall.settings_parse`, what each value must look like
in :mod:`seawall.settings_checks`, the ``SEAWALL_*`` names in :mod:`seawall.settings_names`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from seawall import settings_checks as checks
from seawall.errors import ConfigError
from seawall.settings_names import (
    known_env_names as known_env_names,
    unknown_env_vars as unknown_env_vars,
)
from seawall.settings_parse import (
    PlainEnvSource,
    SecretFileSource,
    TomlFileSource,
    format_validation_error,
)
from seawall.storage.location import parse_location

Compression = Literal["zstd", "gzip", "none"]

#: Secret fields and the ``*_FILE`` environment variables that may hold them.
SECRET_FILE_VARS: dict[str, tuple[str, ...]] = {
    "db_password": ("SEAWALL_DB_PASSWORD_FILE", "DB_PASSWORD_FILE", "PGPASSWORD_FILE"),
    "encryption_key": ("SEAWALL_ENCRYPTION_KEY_FILE", "ENCRYPTION_KEY_FILE"),
    "encryption_identity": (
        "SEAWALL_ENCRYPTION_IDENTITY_FILE",
        "ENCRYPTION_IDENTITY_FILE",
    ),
    "qdrant_api_key": ("SEAWALL_QDRANT_API_KEY_FILE", "QDRANT_API_KEY_FILE"),
}
SECRET_FIELDS = frozenset(SECRET_FILE_VARS)


def _env(field: str, *legacy: str) -> Any:
    """Alias choices: the ``SEAWALL_`` name first, then the legacy names."""
    return AliasChoices(f"SEAWALL_{field.upper()}", *legacy, field)


class RetentionOverride(BaseModel):
    """Per-series retention counts from the config file (unset = inherit)."""

    last: int | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    yearly: int | None = None


class Settings(BaseSettings):
    """All of seawall's options. See docs/configuration.md for each one."""

    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        env_prefix="",
    )

    # --- where backups live -------------------------------------------------
    #: where backups live: an absolute path (a mounted volume) or ``s3://bucket/prefix``;
    #: set as ``BACKUP_DIR``. Read it through :attr:`backup_dir` only where a local
    #: directory is needed by design; everything else opens it with the storage factory.
    repository: str = Field("/backups", validation_alias=_env("backup_dir", "BACKUP_DIR"))
    #: further repositories that get a copy of everything (comma-separated absolute
    #: paths or ``s3://bucket/prefix`` URLs); the primary (BACKUP_DIR) decides success,
    #: a mirror's misses are recorded for ``seawall sync`` (docs/object-storage.md)
    mirrors: list[str] = Field(default_factory=list, validation_alias=_env("mirrors", "MIRRORS"))
    #: how long a mirror is retried before it counts as down for the run (seconds); also
    #: the most one request to an S3 mirror waits to connect or for an answer
    mirror_timeout: float = Field(
        30.0, gt=0, validation_alias=_env("mirror_timeout", "MIRROR_TIMEOUT")
    )
    log_file: Path | None = Field(None, validation_alias=_env("log_file", "LOG_FILE"))
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", validation_alias=_env("log_format", "LOG_FORMAT")
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias=_env("log_level", "LOG_LEVEL")
    )
    lock_timeout: float = Field(10.0, ge=0, validation_alias=_env("lock_timeout", "LOCK_TIMEOUT"))

    # --- PostgreSQL -----------------------------------------------------------
    db_host: str = Field("localhost", validation_alias=_env("db_host", "DB_HOST", "PGHOST"))
    db_port: int = Field(
        5432, ge=1, le=65535, validation_alias=_env("db_port", "DB_PORT", "PGPORT")
    )
    db_name: str = Field("postgres", validation_alias=_env("db_name", "DB_NAME", "PGDATABASE"))
    db_user: str = Field("postgres", validation_alias=_env("db_user", "DB_USER", "PGUSER"))
    db_password: SecretStr | None = Field(
        None, validation_alias=_env("db_password", "DB_PASSWORD", "PGPASSWORD")
    )
    pgpassfile: Path | None = Field(None, validation_alias=_env("pgpassfile", "PGPASSFILE"))
    databases: list[str] = Field(
        default_factory=list, validation_alias=_env("databases", "DATABASES")
    )
    pg_bin_dir: Path | None = Field(None, validation_alias=_env("pg_bin_dir", "PG_BIN_DIR"))
    pg_cluster_name: str = Field(
        "main", validation_alias=_env("pg_cluster_name", "PG_CLUSTER_NAME")
    )
    pgdata: Path | None = Field(None, validation_alias=_env("pgdata", "PGDATA"))
    pitr_window: timedelta = Field(
        timedelta(days=7), validation_alias=_env("pitr_window", "PITR_WINDOW")
    )
    restore_jobs: int = Field(2, ge=1, validation_alias=_env("restore_jobs", "RESTORE_JOBS"))
    content_checksums: bool = Field(
        True, validation_alias=_env("content_checksums", "CONTENT_CHECKSUMS")
    )
    # wal-fetch's read-ahead (postgres/wal/readahead.py); also read by the
    # light reader of the WAL hot path (walcore/env.py)
    wal_read_ahead: int = Field(8, ge=0, validation_alias=_env("wal_read_ahead", "WAL_READ_AHEAD"))
    wal_read_ahead_max_mb: int = Field(
        256, ge=1, validation_alias=_env("wal_read_ahead_max_mb", "WAL_READ_AHEAD_MAX_MB")
    )
    wal_read_ahead_idle: int = Field(
        60, ge=1, validation_alias=_env("wal_read_ahead_idle", "WAL_READ_AHEAD_IDLE")
    )
    # wal-push's asynchronous archiving (postgres/wal/pushahead.py, ADR 0017); also
    # read by the light reader of the WAL hot path (walcore/env.py). 0 = off
    wal_push_ahead: int = Field(0, ge=0, validation_alias=_env("wal_push_ahead", "WAL_PUSH_AHEAD"))
    wal_push_ahead_idle: int = Field(
        60, ge=1, validation_alias=_env("wal_push_ahead_idle", "WAL_PUSH_AHEAD_IDLE")
    )

    # --- pipeline ----------------------------------------------------------------
    compression: Compression = Field("zstd", validation_alias=_env("compression", "COMPRESSION"))
    compression_level: int | None = Field(
        None, validation_alias=_env("compression_level", "COMPRESSION_LEVEL")
    )
    compression_threads: int = Field(
        0, ge=0, validation_alias=_env("compression_threads", "COMPRESSION_THREADS")
    )
    # bytes per second for everything a backup writes (storage/throttle.py); 0 = unlimited
    max_rate: int = Field(0, ge=0, validation_alias=_env("max_rate", "MAX_RATE"))
    encryption: bool = Field(False, validation_alias=_env("encryption", "ENCRYPTION"))
    encryption_key: SecretStr | None = Field(
        None, validation_alias=_env("encryption_key", "ENCRYPTION_KEY")
    )
    encryption_recipients: list[str] = Field(
        default_factory=list,
        validation_alias=_env("encryption_recipients", "ENCRYPTION_RECIPIENTS"),
    )
    encryption_recipients_file: Path | None = Field(
        None,
        validation_alias=_env("encryption_recipients_file", "ENCRYPTION_RECIPIENTS_FILE"),
    )
    encryption_identity: SecretStr | None = Field(
        None, validation_alias=_env("encryption_identity", "ENCRYPTION_IDENTITY")
    )
    encryption_identity_files: list[Path] = Field(
        default_factory=list,
        validation_alias=_env("encryption_identity_files", "ENCRYPTION_IDENTITY_FILES"),
    )
    verify_backup: bool = Field(True, validation_alias=_env("verify_backup", "VERIFY_BACKUP"))

    # --- retention ---------------------------------------------------------------
    retention_last: int = Field(0, ge=0, validation_alias=_env("retention_last", "RETENTION_LAST"))
    retention_days: int = Field(7, ge=0, validation_alias=_env("retention_days", "RETENTION_DAYS"))
    retention_weeks: int = Field(
        4, ge=0, validation_alias=_env("retention_weeks", "RETENTION_WEEKS")
    )
    retention_months: int = Field(
        12, ge=0, validation_alias=_env("retention_months", "RETENTION_MONTHS")
    )
    retention_years: int = Field(
        0, ge=-1, validation_alias=_env("retention_years", "RETENTION_YEARS")
    )
    retention_tz: str = Field("UTC", validation_alias=_env("retention_tz", "RETENTION_TZ"))
    retention_failed_grace: timedelta = Field(
        timedelta(days=7),
        validation_alias=_env("retention_failed_grace", "RETENTION_FAILED_GRACE"),
    )
    prune_after_backup: bool = Field(
        True, validation_alias=_env("prune_after_backup", "PRUNE_AFTER_BACKUP")
    )
    retention_overrides: dict[str, RetentionOverride] = Field(
        default_factory=dict, validation_alias=_env("retention_overrides")
    )

    # --- Qdrant ----------------------------------------------------------------------
    qdrant_url: str | None = Field(None, validation_alias=_env("qdrant_url", "QDRANT_URL"))
    qdrant_host: str = Field("localhost", validation_alias=_env("qdrant_host", "QDRANT_HOST"))
    qdrant_port: int = Field(
        6333, ge=1, le=65535, validation_alias=_env("qdrant_port", "QDRANT_PORT")
    )
    qdrant_https: bool = Field(False, validation_alias=_env("qdrant_https", "QDRANT_HTTPS"))
    qdrant_api_key: SecretStr | None = Field(
        None, validation_alias=_env("qdrant_api_key", "QDRANT_API_KEY")
    )
    qdrant_ca_bundle: Path | None = Field(
        None, validation_alias=_env("qdrant_ca_bundle", "QDRANT_CA_BUNDLE")
    )
    qdrant_timeout: float = Field(
        600.0, gt=0, validation_alias=_env("qdrant_timeout", "QDRANT_TIMEOUT")
    )
    qdrant_concurrency: int = Field(
        2, ge=1, validation_alias=_env("qdrant_concurrency", "QDRANT_CONCURRENCY")
    )
    qdrant_collections: list[str] = Field(
        default_factory=list,
        validation_alias=_env("qdrant_collections", "QDRANT_COLLECTIONS"),
    )
    # Snapshot compression (None = COMPRESSION). Qdrant snapshots default to
    # zstd level 1 unless COMPRESSION_LEVEL is set: measured on float32
    # vectors it gives level 3's ratio at about twice the speed (docs/qdrant.md).
    qdrant_compression: Compression | None = Field(
        None, validation_alias=_env("qdrant_compression", "QDRANT_COMPRESSION")
    )
    qdrant_peer_urls: list[str] = Field(
        default_factory=list, validation_alias=_env("qdrant_peer_urls", "QDRANT_PEER_URLS")
    )
    # --- DR drills (docs/drills.md) ---------------------------------------------------
    drill_rto_objective: timedelta = Field(
        timedelta(hours=1), validation_alias=_env("drill_rto_objective", "DRILL_RTO_OBJECTIVE")
    )
    drill_rpo_objective: timedelta = Field(
        timedelta(hours=24), validation_alias=_env("drill_rpo_objective", "DRILL_RPO_OBJECTIVE")
    )
    # Restore the logical drills on another server (default: DB_HOST/DB_PORT),
    # with the same user and password; PITR drills always run a throwaway server.
    drill_db_host: str | None = Field(None, validation_alias=_env("drill_db_host", "DRILL_DB_HOST"))
    drill_db_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=_env("drill_db_port", "DRILL_DB_PORT")
    )
    drill_smoke_query: str | None = Field(
        None, validation_alias=_env("drill_smoke_query", "DRILL_SMOKE_QUERY")
    )
    drill_smoke_min: float | None = Field(
        None, validation_alias=_env("drill_smoke_min", "DRILL_SMOKE_MIN")
    )
    drill_smoke_expect: str | None = Field(
        None, validation_alias=_env("drill_smoke_expect", "DRILL_SMOKE_EXPECT")
    )
    drill_smoke_database: str | None = Field(
        None, validation_alias=_env("drill_smoke_database", "DRILL_SMOKE_DATABASE")
    )
    # None (unset): every engine whose connection is configured (active_engines)
    engines: list[Literal["postgres", "qdrant"]] | None = Field(
        None, validation_alias=_env("engines", "ENGINES")
    )
    # --- `seawall status` (docs/status-and-check.md) -----------------------------------
    #: logical dumps and Qdrant snapshots are expected this often (their CronJob schedule)
    status_backup_interval: timedelta = Field(
        timedelta(days=1),
        validation_alias=_env("status_backup_interval", "STATUS_BACKUP_INTERVAL"),
    )
    #: base backups are expected this often
    status_base_backup_interval: timedelta = Field(
        timedelta(days=1),
        validation_alias=_env("status_base_backup_interval", "STATUS_BASE_BACKUP_INTERVAL"),
    )
    #: a backup older than interval + grace is stale (a run may start late or take long)
    status_grace: timedelta = Field(
        timedelta(hours=2), validation_alias=_env("status_grace", "STATUS_GRACE")
    )
    #: the newest archived WAL segment may be this old (archive_timeout bounds it when quiet)
    status_wal_max_lag: timedelta = Field(
        timedelta(hours=1), validation_alias=_env("status_wal_max_lag", "STATUS_WAL_MAX_LAG")
    )
    #: unset: "no drill recorded" is a warning; set: no drill, or none this recent, is a problem
    status_drill_max_age: timedelta | None = Field(
        None, validation_alias=_env("status_drill_max_age", "STATUS_DRILL_MAX_AGE")
    )

    @field_validator(
        "compression",
        "qdrant_compression",
        "log_format",
        "log_level",
        "engines",
        mode="before",
    )
    @classmethod
    def _lower_enum(cls, value: Any, info: ValidationInfo) -> Any:
        return checks.lower_enum(value, info.field_name)

    @field_validator(
        "databases",
        "encryption_recipients",
        "qdrant_collections",
        "qdrant_peer_urls",
        "encryption_identity_files",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return checks.split_list(value)

    @field_validator(
        "pitr_window",
        "retention_failed_grace",
        "drill_rto_objective",
        "drill_rpo_objective",
        "status_backup_interval",
        "status_base_backup_interval",
        "status_grace",
        "status_wal_max_lag",
        "status_drill_max_age",
        mode="before",
    )
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        return checks.duration(value)

    @field_validator("qdrant_url", mode="before")
    @classmethod
    def _qdrant_url(cls, value: Any) -> Any:
        return checks.http_url(value)

    @field_validator("qdrant_peer_urls")
    @classmethod
    def _qdrant_peer_urls(cls, value: list[str]) -> list[str]:
        return [checks.http_url(v) for v in value]

    @field_validator("max_rate", mode="before")
    @classmethod
    def _parse_rate(cls, value: Any) -> Any:
        return checks.rate(value)

    @field_validator("retention_tz")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        return checks.time_zone(value)

    @model_validator(mode="after")
    def _check_encryption(self) -> Settings:
        key = self.encryption_key.get_secret_value() if self.encryption_key else None
        recipients = bool(self.encryption_recipients or self.encryption_recipients_file)
        checks.encryption(self.encryption, key, recipients)
        return self

    @field_validator("compression_level")
    @classmethod
    def _check_level(cls, level: int | None, info: ValidationInfo) -> int | None:
        """A field validator (not a model one) so other bad fields are reported with it."""
        return checks.level(level, info.data.get("compression", "zstd"))

    @field_validator("mirrors", mode="before")
    @classmethod
    def _mirrors(cls, value: Any) -> Any:
        return checks.mirrors(value)

    @model_validator(mode="after")
    def _mirrors_differ(self) -> Settings:
        if self.repository in self.mirrors:
            raise ValueError(
                f"MIRRORS lists the primary repository {self.repository} itself: "
                "a mirror must be another place"
            )
        return self

    @field_validator("repository", mode="before")
    @classmethod
    def _repository(cls, value: Any) -> str:
        return checks.repository(value)

    # --- derived ---------------------------------------------------------------------
    @property
    def repository_is_local(self) -> bool:
        return parse_location(self.repository).is_local

    @property
    def backup_dir(self) -> Path:
        """The repository's directory, for what is local by design (see ADR 0012).

        Raises ConfigError when the repository is object storage: a caller
        that reaches for a path there would otherwise write to a local
        folder named ``s3:`` (the defect this property replaced).
        """
        loc = parse_location(self.repository)
        if not loc.is_local:
            raise ConfigError(
                f"BACKUP_DIR is {loc}: this operation needs a local repository directory"
            )
        return Path(loc.where)

    @property
    def postgres_dir(self) -> Path:
        return self.backup_dir / "postgresql"

    @property
    def qdrant_dir(self) -> Path:
        return self.backup_dir / "qdrant"

    @property
    def qdrant_base_url(self) -> str:
        if self.qdrant_url:
            return self.qdrant_url.rstrip("/")
        scheme = "https" if self.qdrant_https else "http"
        return f"{scheme}://{self.qdrant_host}:{self.qdrant_port}"

    def target_databases(self) -> list[str]:
        return list(self.databases) or [self.db_name]

    def active_engines(self) -> list[str]:
        """What ``seawall backup`` backs up: ENGINES if set, else every configured engine.

        PostgreSQL counts as configured unless only Qdrant is (its connection
        defaults to localhost, as libpq's does); Qdrant counts when its URL,
        host, collections or API key are set. So README's example with both
        configured backs up both without ENGINES, and a Qdrant-only setup does
        not fail on a PostgreSQL that is not there.
        """
        if self.engines is not None:
            return list(dict.fromkeys(self.engines))
        given = self.model_fields_set
        qdrant = bool(given & checks.QDRANT_CONNECTION)
        postgres = bool(given & checks.POSTGRES_CONNECTION) or not qdrant
        return [name for name, on in (("postgres", postgres), ("qdrant", qdrant)) if on]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            PlainEnvSource(settings_cls),
            SecretFileSource(settings_cls, SECRET_FILE_VARS),
            TomlFileSource(settings_cls),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; CLI overrides (``None`` = not given) win over env."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, Settings.model_fields, SECRET_FIELDS)
        ) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
