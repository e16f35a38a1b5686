"""S3-compatible object storage behind the Storage protocol (issue 14).

Imported only by code that asked for an ``s3://`` repository: boto3 costs
a few hundred milliseconds to import, which the lean ``wal-push`` path must
never pay (tests/integration/wal/test_wal_fast_imports.py). Built only by
:mod:`seawall.storage.factory` for ``BACKUP_DIR=s3://…`` (ADR 0012).
"""

from seawall.storage.s3.backend import S3Storage, parse_url
from seawall.storage.s3.retry import RetryPolicy

__all__ = ["RetryPolicy", "S3Storage", "parse_url"]
