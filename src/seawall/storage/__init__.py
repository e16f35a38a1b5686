"""Where bytes live. One :class:`Storage` protocol, backends built only by
:mod:`seawall.storage.factory`.

Keys are relative POSIX paths (``postgresql/logical/app/<id>/dump.pgdump.zst``).
Every backend passes the same contract tests (tests/support/storage_contract.py).
"""

from seawall.storage.base import LocalVolume, ObjectInfo, Storage

__all__ = ["LocalVolume", "ObjectInfo", "Storage"]
