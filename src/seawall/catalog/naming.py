"""Safe names: series names and ids become path segments.

Database and collection names come from servers and users; a Qdrant
collection may be called ``../../etc``. Anything outside a conservative
alphabet is percent-encoded so that a name can never escape its directory,
and the encoding is reversible so listings show the real name.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from urllib.parse import quote, unquote

_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")


#: Longest reversible encoding: the longest whose lock file name
#: (``.locks/qdrant.snapshot.<segment>.lock``) fits NAME_MAX (255 bytes). Every
#: name a backup was ever written under keeps its segment, so no existing
#: series moves (manifests locate their artifacts by the encoded series).
MAX_REVERSIBLE = 234
#: A long name's segment: a readable head of its encoding, then a digest.
#: "=" never occurs in an encoding (``quote`` escapes it), so the two forms
#: cannot be confused.
_HASHED = re.compile(r"^%=[A-Za-z0-9%_\-~]{0,160}=[0-9a-f]{24}$")


def encode_segment(name: str) -> str:
    """Encode a name as one safe path segment (reversible unless very long).

    A Qdrant collection may be called 255 characters of CJK text, whose
    encoding (9 characters per character) no file name can hold: the lock
    file failed with ENAMETOOLONG and the collection could never be backed
    up. Such a name becomes ``%=<head>=<sha256 prefix>``: stable, safe, and
    returned unchanged by :func:`decode_segment` and by this function (so
    ``encode(decode(segment)) == segment`` always holds); the manifest keeps
    the real name.
    """
    if _SAFE.match(name) and ".." not in name:
        return name
    if _HASHED.match(name):
        return name
    # Safe names never start with "%", so the prefix marks an encoded one.
    encoded = "%" + quote(name, safe="").replace(".", "%2E")
    if len(encoded) <= MAX_REVERSIBLE:
        return encoded
    head = encoded[1:161]
    cut = head.rfind("%", len(head) - 2)
    if cut != -1:  # never end the head inside a %XX escape
        head = head[:cut]
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"%={head}={digest}"


def decode_segment(segment: str) -> str:
    """Inverse of :func:`encode_segment` (a long name's digested form stays as it is)."""
    if not segment.startswith("%") or _HASHED.match(segment):
        return segment
    return unquote(segment[1:])


def new_backup_id(now: datetime | None = None) -> str:
    """Sortable id: UTC time plus a random suffix (two runs in one second)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def is_backup_id(text: str) -> bool:
    return bool(_ID.match(text))
