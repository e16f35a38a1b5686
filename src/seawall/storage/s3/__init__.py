"""S3-compatible object storage behind the Storage protocol (issue 14, groundwork).

Imported only by code that asked for an ``s3://`` repository: boto3 costs
a few hundred milliseconds to import, which the lean ``wal-push`` path must
never pay (tests/integration/wal/test_wal_fast_imports.py). Not wired into
settings, WAL, mirrors or the exporter yet (docs/object-storage.md).
"""

from seawall.storage.s3.backend import S3Storage, parse_url
from seawall.storage.s3.retry import RetryPolicy

__all__ = ["RetryPolicy", "S3Storage", "parse_url"]
