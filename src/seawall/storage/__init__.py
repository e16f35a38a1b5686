"""Where bytes live. One :class:`Storage` protocol, one local implementation.

Keys are relative POSIX paths (``postgresql/logical/app/<id>/dump.pgdump.zst``).
Every backend passes the same contract tests (tests/unit/test_storage_contract.py).

The names below are loaded on first use (PEP 562), so that importing a
sub-module such as the lean S3 client of the WAL hot path
(:mod:`seawall.storage.s3.lean`) does not import the local backend, its
dataclasses and ``re`` first.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from seawall.storage.base import ObjectInfo, Storage
    from seawall.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "Storage"]


def __getattr__(name: str) -> object:
    if name in ("ObjectInfo", "Storage"):
        from seawall.storage import base

        return getattr(base, name)
    if name == "LocalStorage":
        from seawall.storage.local import LocalStorage

        return LocalStorage
    raise AttributeError(f"module 'seawall.storage' has no attribute {name!r}")
