"""What the key of an archived WAL file says (pure, no I/O).

An archived file is named ``<walname>-<sha40><suffix>`` (the layout is in
:mod:`seawall.walcore.layout`); its name alone tells which WAL file it is,
how it is encoded and what the decoded content must hash to. Used by the
WAL commands (write side), retention and prune, ``info``/``check`` and the
exporter (read side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from seawall.walcore.layout import SHA_LEN

_SEG = r"[0-9A-F]{24}"
_NAME = re.compile(
    rf"^(?P<name>{_SEG}(?:\.partial|\.[0-9A-F]{{8}}\.backup)?|[0-9A-F]{{8}}\.history)"
    rf"-(?P<sha>[0-9a-f]{{{SHA_LEN}}})(?P<suffix>(?:\.zst|\.gz)?(?:\.age)?)$"
)


@dataclass(frozen=True)
class WalObject:
    """One archived WAL file as described by its key."""

    key: str
    name: str  # the WAL file name PostgreSQL knows (000000010000000000000003)
    sha256_prefix: str
    compression: str  # zstd | gzip | none
    encrypted: bool

    @property
    def is_segment(self) -> bool:
        return len(self.name) == 24


def parse_archived_name(base: str, key: str | None = None) -> WalObject | None:
    """Parse a bare archived file name (no ``/``); None if it is not one.

    ``key`` is what the result records as its key (default: ``base``).
    """
    m = _NAME.match(base)
    if not m:
        return None
    suffix = m.group("suffix")
    compression = "zstd" if ".zst" in suffix else "gzip" if ".gz" in suffix else "none"
    return WalObject(
        base if key is None else key,
        m.group("name"),
        m.group("sha"),
        compression,
        suffix.endswith(".age"),
    )


def parse_wal_key(key: str) -> WalObject | None:
    """Parse a key (or bare file name) of the archive; None if it is not one."""
    return parse_archived_name(key.rsplit("/", 1)[-1], key)
