"""Safe names: series names and ids become path segments.

Database and collection names come from servers and users; a Qdrant
collection may be called ``../../etc``. Anything outside a conservative
alphabet is percent-encoded so that a name can never escape its directory,
and the encoding is reversible so listings show the real name.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from urllib.parse import quote, unquote

_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")


def encode_segment(name: str) -> str:
    """Encode a name as one safe path segment (reversible)."""
    if _SAFE.match(name) and ".." not in name:
        return name
    # Safe names never start with "%", so the prefix marks an encoded one.
    return "%" + quote(name, safe="").replace(".", "%2E")


def decode_segment(segment: str) -> str:
    """Inverse of :func:`encode_segment`."""
    if not segment.startswith("%"):
        return segment
    return unquote(segment[1:])


def new_backup_id(now: datetime | None = None) -> str:
    """Sortable id: UTC time plus a random suffix (two runs in one second)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def is_backup_id(text: str) -> bool:
    return bool(_ID.match(text))
