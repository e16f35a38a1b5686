"""S3-compatible object storage behind the Storage protocol (issue 14).

boto3 costs a few hundred milliseconds to import, which the lean
``wal-push`` path must never pay (tests/integration/wal/test_wal_fast_imports.py),
so the backend's names are loaded on first use (PEP 562): the WAL hot path
imports :mod:`seawall.storage.s3.lean` (standard library only) without
pulling in :mod:`seawall.storage.s3.backend`.
Built only by :mod:`seawall.storage.factory` for ``BACKUP_DIR=s3://…`` (ADR 0012).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from seawall.storage.s3.backend import S3Storage, parse_url
    from seawall.storage.s3.retry import RetryPolicy

__all__ = ["RetryPolicy", "S3Storage", "parse_url"]


def __getattr__(name: str) -> object:
    if name in ("S3Storage", "parse_url"):
        from seawall.storage.s3 import backend

        return getattr(backend, name)
    if name == "RetryPolicy":
        from seawall.storage.s3.retry import RetryPolicy

        return RetryPolicy
    raise AttributeError(f"module 'seawall.storage.s3' has no attribute {name!r}")
