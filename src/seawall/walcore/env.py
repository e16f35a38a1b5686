"""The one light reader of the WAL options from the environment.

``archive_command`` starts one interpreter per WAL segment, so every module
the push imports is paid for once per 16 MiB of WAL, and pydantic-settings
costs more than a whole push should. This reader therefore uses only
:mod:`os` (``tomllib`` and ``json`` are imported only when a config file or
a JSON list is actually used) and returns strings and ints. The lean
wal-push/wal-fetch use it directly; :mod:`seawall.postgres.wal.envconfig`
turns its result into a ``WalConfig`` with a ``KeyRing`` for the general
WAL paths, without reading anything itself.

The names and precedence are those of :mod:`seawall.settings`
(``SEAWALL_<FIELD>`` first, then the legacy name, then the field name in any
case, then the ``*_FILE`` variant of a secret, then the TOML file):
:data:`LEGACY_NAMES` and :data:`SECRET_FILE_VARS` are the variables read
here, and tests/unit/test_walcore_env.py checks them, the defaults and the
parsing against settings.py.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs an import of collections at run time
    from collections.abc import Mapping

_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n", ""})
COMPRESSIONS = ("zstd", "gzip", "none")
#: settings.py field -> its legacy variable; each is also read as
#: ``SEAWALL_<FIELD>`` (first) and as the field name itself, in any case
LEGACY_NAMES = {
    "backup_dir": "BACKUP_DIR",
    "pg_cluster_name": "PG_CLUSTER_NAME",
    "compression": "COMPRESSION",
    "compression_level": "COMPRESSION_LEVEL",
    "compression_threads": "COMPRESSION_THREADS",
    "encryption": "ENCRYPTION",
    "encryption_key": "ENCRYPTION_KEY",
    "encryption_identity": "ENCRYPTION_IDENTITY",
    "encryption_recipients": "ENCRYPTION_RECIPIENTS",
    "encryption_recipients_file": "ENCRYPTION_RECIPIENTS_FILE",
    "encryption_identity_files": "ENCRYPTION_IDENTITY_FILES",
    "wal_read_ahead": "WAL_READ_AHEAD",
    "wal_read_ahead_max_mb": "WAL_READ_AHEAD_MAX_MB",
    "wal_read_ahead_idle": "WAL_READ_AHEAD_IDLE",
    "wal_push_ahead": "WAL_PUSH_AHEAD",
    "wal_push_ahead_idle": "WAL_PUSH_AHEAD_IDLE",
}
#: secret fields read here -> the ``*_FILE`` variables that may hold them
SECRET_FILE_VARS = {
    "encryption_key": ("SEAWALL_ENCRYPTION_KEY_FILE", "ENCRYPTION_KEY_FILE"),
    "encryption_identity": ("SEAWALL_ENCRYPTION_IDENTITY_FILE", "ENCRYPTION_IDENTITY_FILE"),
}


class WalEnvError(ValueError):
    """An option has an invalid value (envconfig turns it into ConfigError)."""


class WalEnv:
    """The WAL commands' options as read, before keys are parsed."""

    __slots__ = (
        "backup_dir",
        "cluster",
        "compression",
        "compression_level",
        "compression_threads",
        "encryption",
        "identity",
        "identity_files",
        "key",
        "push_ahead",
        "push_ahead_idle",
        "read_ahead",
        "read_ahead_idle",
        "read_ahead_max_mb",
        "recipients",
        "recipients_file",
    )

    def __init__(
        self,
        *,
        backup_dir: str,
        cluster: str,
        compression: str,
        compression_level: int | None,
        compression_threads: int,
        encryption: bool,
        key: str | None,
        identity: str | None,
        recipients: list[str],
        recipients_file: str | None,
        identity_files: list[str],
        read_ahead: int = 8,
        read_ahead_max_mb: int = 256,
        read_ahead_idle: int = 60,
        push_ahead: int = 0,
        push_ahead_idle: int = 60,
    ) -> None:
        self.backup_dir = backup_dir
        self.cluster = cluster
        self.compression = compression
        self.compression_level = compression_level
        self.compression_threads = compression_threads
        self.encryption = encryption
        self.key = key
        self.identity = identity
        self.recipients = recipients
        self.recipients_file = recipients_file
        self.identity_files = identity_files
        self.read_ahead = read_ahead
        self.read_ahead_max_mb = read_ahead_max_mb
        self.read_ahead_idle = read_ahead_idle
        self.push_ahead = push_ahead
        self.push_ahead_idle = push_ahead_idle


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.lowered = {k.lower(): v for k, v in env.items()}
        self.toml: dict[str, object] = {}
        path = env.get("SEAWALL_CONFIG")
        if path:
            import tomllib  # only when a config file is used: import time matters here

            try:
                with open(path, "rb") as fh:
                    self.toml = {k.lower(): v for k, v in tomllib.load(fh).items()}
            except OSError as exc:
                raise WalEnvError(
                    f"invalid configuration: SEAWALL_CONFIG: cannot read {path} ({exc.strerror})"
                ) from exc
            except tomllib.TOMLDecodeError as exc:
                raise WalEnvError(
                    f"invalid configuration: SEAWALL_CONFIG: {path} is not valid TOML ({exc})"
                ) from exc

    def get(self, field_name: str) -> str | None:
        """``SEAWALL_<FIELD>``, then the legacy name, then the field name (any case)."""
        for name in (f"SEAWALL_{field_name.upper()}", LEGACY_NAMES[field_name], field_name):
            if name in self.env:
                return self.env[name]
            if name.lower() in self.lowered:
                return self.lowered[name.lower()]
        return None

    def secret(self, field_name: str) -> str | None:
        value = self.get(field_name)
        if value is not None:
            return value
        for var in SECRET_FILE_VARS[field_name]:
            path = self.env.get(var)
            if not path:
                continue
            try:
                with open(path, encoding="utf-8") as fh:
                    return fh.read().rstrip("\r\n")
            except OSError as exc:
                raise WalEnvError(
                    f"invalid configuration: {var}: cannot read secret file "
                    f"{path} ({exc.strerror}); point it at a readable file"
                ) from exc
        toml_value = self.toml.get(field_name)
        return None if toml_value is None else str(toml_value)

    def value(self, field_name: str) -> object | None:
        env_value = self.get(field_name)
        if env_value is not None:
            return env_value
        return self.toml.get(field_name)


def as_bool(name: str, value: object | None, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise WalEnvError(f"invalid configuration: {name}: expected true or false (got {text[:20]!r})")


def as_int(name: str, value: object | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise WalEnvError(
            f"invalid configuration: {name}: expected an integer (got {str(value)[:20]!r})"
        ) from None


def as_count(name: str, value: object | None, default: int, minimum: int) -> int:
    """An integer option with a lower bound (settings.py's ``ge=``)."""
    number = as_int(name, value)
    if number is None:
        return default
    if number < minimum:
        raise WalEnvError(
            f"invalid configuration: {name}: must be at least {minimum} (got {number})"
        )
    return number


def as_list(value: object | None) -> list[str]:
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


def read_value(field_name: str, env: Mapping[str, str] | None = None) -> object | None:
    """One option of :data:`LEGACY_NAMES` as settings.py finds it (environment, then TOML), raw.

    For a lean path that needs one option before deciding which reader it
    is (e.g. whether ``BACKUP_DIR`` is a local path or an ``s3://`` URL).
    """
    return _Reader(os.environ if env is None else env).value(field_name)


def read_wal_env(env: Mapping[str, str] | None = None) -> WalEnv:
    """Read the WAL commands' options from ``env`` (default: os.environ)."""
    r = _Reader(os.environ if env is None else env)
    backup_dir = r.value("backup_dir")
    compression = str(r.value("compression") or "zstd").strip().lower()
    if compression not in COMPRESSIONS:
        raise WalEnvError(
            f"invalid configuration: COMPRESSION: expected one of zstd, gzip, none "
            f"(got {compression[:20]!r})"
        )
    recipients_file = r.value("encryption_recipients_file")
    return WalEnv(
        backup_dir=str(backup_dir) if backup_dir else "/backups",
        cluster=str(r.value("pg_cluster_name") or "main"),
        compression=compression,
        compression_level=as_int("COMPRESSION_LEVEL", r.value("compression_level")),
        compression_threads=as_count("COMPRESSION_THREADS", r.value("compression_threads"), 0, 0),
        encryption=as_bool("ENCRYPTION", r.value("encryption"), False),
        key=r.secret("encryption_key"),
        identity=r.secret("encryption_identity"),
        recipients=as_list(r.value("encryption_recipients")),
        recipients_file=str(recipients_file) if recipients_file else None,
        identity_files=as_list(r.value("encryption_identity_files")),
        read_ahead=as_count("WAL_READ_AHEAD", r.value("wal_read_ahead"), 8, 0),
        read_ahead_max_mb=as_count(
            "WAL_READ_AHEAD_MAX_MB",
            r.value("wal_read_ahead_max_mb"),
            256,
            1,
        ),
        read_ahead_idle=as_count("WAL_READ_AHEAD_IDLE", r.value("wal_read_ahead_idle"), 60, 1),
        push_ahead=as_count("WAL_PUSH_AHEAD", r.value("wal_push_ahead"), 0, 0),
        push_ahead_idle=as_count("WAL_PUSH_AHEAD_IDLE", r.value("wal_push_ahead_idle"), 60, 1),
    )
