"""The checks behind :class:`seawall.settings.Settings`'s validators, as plain functions.

Why apart: the model's module holds every option once (and stays small);
what a value must look like is here, each check a function of the value
(and the field or the earlier field it depends on). The validators in the
model are one-line calls, so pydantic still reports every bad field at
once (docs/configuration.md).
"""

from __future__ import annotations

import os
from typing import Any

from seawall.settings_parse import parse_duration
from seawall.storage.location import LocationError, parse_location
from seawall.units import parse_size

#: Options whose presence means "this engine is configured" (Settings.active_engines).
POSTGRES_CONNECTION = frozenset(
    {"db_host", "db_port", "db_name", "db_user", "db_password", "pgpassfile", "databases"}
)
QDRANT_CONNECTION = frozenset(
    {"qdrant_url", "qdrant_host", "qdrant_collections", "qdrant_api_key", "qdrant_peer_urls"}
)
#: allowed COMPRESSION_LEVEL per COMPRESSION
LEVELS = {"zstd": (1, 22), "gzip": (1, 9), "none": (0, 0)}


def lower_enum(value: Any, field_name: str | None) -> Any:
    """Enumerated values are case-insensitive (``COMPRESSION=LZ4`` is refused for LZ4, not case)."""
    if isinstance(value, str):
        value = value.strip().lower()
        if field_name == "engines":  # a list: ``postgres,qdrant``
            value = [item for item in value.replace(",", " ").split() if item]
    if isinstance(value, list):
        value = [v.strip().lower() if isinstance(v, str) else v for v in value]
        # the repository and the metrics say postgresql: accept the word here too
        value = ["postgres" if v == "postgresql" else v for v in value]
    return value


def split_list(value: Any) -> Any:
    """Accept ``a,b c`` in env vars as well as real lists (config file)."""
    if isinstance(value, str):
        return [item for item in value.replace(",", " ").split() if item]
    return value


def duration(value: Any) -> Any:
    """Accept ``7d``, ``36h``, ``90m`` as operators write them (also status thresholds)."""
    return parse_duration(value) if isinstance(value, str) else value


def rate(value: Any) -> Any:
    """``MAX_RATE=50MiB`` (or ``50M``, ``800KB``, bytes) as operators write sizes."""
    return parse_size(value) if isinstance(value, str) else value


def time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like UTC") from exc
    return value


def encryption(on: bool, key: str | None, recipients: bool) -> None:
    """ENCRYPTION on needs a key; a key that could mean either mode is refused."""
    if on and not (recipients or key):
        raise ValueError(
            "ENCRYPTION is on but no key is set: set ENCRYPTION_RECIPIENTS "
            "(age public keys, see `seawall keygen`) or ENCRYPTION_KEY"
        )
    from seawall.pipeline.keys import AMBIGUOUS_KEYS, is_ambiguous

    if is_ambiguous(on, key, recipients):
        raise ValueError(AMBIGUOUS_KEYS)


def level(level: int | None, compression: str) -> int | None:
    """COMPRESSION_LEVEL within its COMPRESSION's range (unset: the default)."""
    if level is None:
        return level
    allowed = LEVELS.get(compression, (1, 22))
    if not allowed[0] <= level <= allowed[1]:
        raise ValueError(
            f"{level} is out of range for {compression} "
            f"(expected {allowed[0]}..{allowed[1]}, or unset for the default)"
        )
    return level


def mirrors(value: Any) -> Any:
    """``MIRRORS=/mnt/dr,s3://bucket/prefix``: each an absolute path or s3:// URL."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list):
        raise ValueError("expected a comma-separated list of absolute paths or s3:// URLs")
    out: list[str] = []
    for item in value:
        try:
            loc = str(parse_location(os.fspath(item)))
        except (LocationError, TypeError) as exc:
            raise ValueError(f"{item!r}: {exc}") from None
        if loc not in out:
            out.append(loc)
    return out


def repository(value: Any) -> str:
    """An absolute path or a supported URL (``s3://``); a relative path is refused."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError("expected an absolute path or s3://bucket/prefix")
    try:
        return str(parse_location(value))
    except LocationError as exc:
        raise ValueError(str(exc)) from None


def http_url(value: Any) -> Any:
    """``QDRANT_URL`` / each of ``QDRANT_PEER_URLS``: ``http(s)://host[:port][/prefix]``.

    Checked here so a typo is one configuration line (exit 2) before any run
    starts, instead of an "internal error" (a port over 65535, an unclosed
    IPv6 bracket) or "cannot reach Qdrant" (exit 5, as if the server were down).
    Surrounding whitespace (a secret file's trailing newline) is dropped.
    """
    if not isinstance(value, str):
        return value
    from urllib.parse import urlsplit

    url = value.strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc}); expected http(s)://host[:port]") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s)://host[:port] URL")
    if port == 0:
        raise ValueError("port 0 is not a port; expected http(s)://host[:port]")
    return url
