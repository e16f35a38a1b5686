"""Where bytes live. One :class:`Storage` protocol, backends built only by
:mod:`seawall.storage.factory`.

Keys are relative POSIX paths (``postgresql/logical/app/<id>/dump.pgdump.zst``).
Every backend passes the same contract tests (tests/support/storage_contract.py).

The names below are loaded on first use (PEP 562), so that importing a
sub-module such as the lean S3 client of the WAL hot path
(:mod:`seawall.storage.s3.lean`) does not import the protocol module,
its dataclasses and ``re`` first.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from seawall.storage.base import LocalVolume, ObjectInfo, Storage

__all__ = ["LocalVolume", "ObjectInfo", "Storage"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from seawall.storage import base

        return getattr(base, name)
    raise AttributeError(f"module 'seawall.storage' has no attribute {name!r}")
