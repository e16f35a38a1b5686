"""Where bytes live. One :class:`Storage` protocol, one local implementation.

Keys are relative POSIX paths (``postgresql/logical/app/<id>/dump.pgdump.zst``).
Every backend passes the same contract tests (tests/unit/test_storage_contract.py).
"""

from seawall.storage.base import ObjectInfo, Storage
from seawall.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "Storage"]
