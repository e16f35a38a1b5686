"""How :mod:`seawall.settings` reads its values and reports a bad one.

Kept beside the model so that ``settings.py`` is the list of options: the
sources (plain-text lists in the environment, ``*_FILE`` secrets, the TOML
file named by ``SEAWALL_CONFIG``), the duration parser the validators use,
and the one-line error that names every bad field by the variable the
operator wrote, without echoing a secret value.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from seawall.errors import ConfigError


class PlainEnvSource(EnvSettingsSource):
    """Env source that reads lists as plain strings instead of JSON.

    Operators write ``DATABASES=app,billing``; pydantic-settings would insist
    on JSON for list fields. A value that looks like JSON still parses as JSON.
    """

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().startswith(("[", "{")):
            return value
        return super().decode_complex_value(field_name, field, value)


class SecretFileSource(PydanticBaseSettingsSource):
    """``*_FILE`` variants of secrets, as Kubernetes mounts them.

    ``secret_file_vars``: secret field -> the variables that may name its
    file, the first one set wins (``settings.SECRET_FILE_VARS``).
    """

    def __init__(
        self, settings_cls: type[BaseSettings], secret_file_vars: Mapping[str, tuple[str, ...]]
    ) -> None:
        super().__init__(settings_cls)
        self._secret_file_vars = secret_file_vars

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, env_names in self._secret_file_vars.items():
            for env_name in env_names:
                path = os.environ.get(env_name)
                if not path:
                    continue
                try:
                    values[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
                except OSError as exc:
                    raise ConfigError(
                        f"invalid configuration: {env_name}: cannot read secret file "
                        f"{path} ({exc.strerror}); point it at a readable file"
                    ) from exc
                break
        return values


class TomlFileSource(PydanticBaseSettingsSource):
    """Optional TOML config file named by ``SEAWALL_CONFIG``.

    Keys are the option names in lower case (``backup_dir = "/backups"``);
    ``[retention_overrides."postgresql/logical/app"]`` tables set per-series
    retention.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("SEAWALL_CONFIG")
        if not path:
            return {}
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(
                f"invalid configuration: SEAWALL_CONFIG: cannot read {path} ({exc.strerror})"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"invalid configuration: SEAWALL_CONFIG: {path} is not valid TOML ({exc})"
            ) from exc
        return {key.lower(): value for key, value in data.items()}


def parse_duration(text: str) -> timedelta:
    """Parse ``7d``, ``12h``, ``30m``, ``45s``, ``2w`` or plain seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    try:
        if text and text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except ValueError as exc:
        raise ValueError(f"expected a duration like 7d, 36h or 90m, got {text!r}") from exc


def _field_for(fields: Mapping[str, FieldInfo], loc_name: str) -> str | None:
    """Map a validation error location (an alias or a field name) to its field."""
    lowered = loc_name.lower()
    for name, info in fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else []
        if lowered == name or any(isinstance(c, str) and c.lower() == lowered for c in choices):
            return name
    return None


def _env_name(fields: Mapping[str, FieldInfo], field: str) -> str:
    """The name operators know best: the legacy variable, else ``SEAWALL_*``."""
    info = fields[field]
    alias = info.validation_alias
    names = (
        [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []
    )
    legacy = [n for n in names[1:] if n.isupper()]
    return legacy[0] if legacy else f"SEAWALL_{field.upper()}"


def format_validation_error(
    exc: ValidationError, fields: Mapping[str, FieldInfo], secret_fields: Collection[str]
) -> str:
    """One line listing every bad field and what is expected; no secret values.

    ``fields``: the model's fields (``Settings.model_fields``); a field in
    ``secret_fields`` is named without the value it got.
    """
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        field = _field_for(fields, loc[0]) if loc else None
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if field is None:
            parts.append(msg)
            continue
        name = _env_name(fields, field)
        shown = err.get("input")
        if field in secret_fields or isinstance(shown, dict | list):
            parts.append(f"{name}: {msg}")
        else:
            # a URL's userinfo (``http://user:password@host``) is a secret too
            shown = re.sub(r"://[^/@\s]*@", "://***@", str(shown))
            parts.append(f"{name}: {msg} (got {shown[:60]!r})")
    return "invalid configuration: " + "; ".join(parts)
