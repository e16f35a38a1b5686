"""S3 error codes, classified once for both S3 clients.

Why a leaf module: the general backend (``retry.py``, boto3) and the lean
wal-push client (``lean.py``, standard library only) must agree on what is
worth another attempt and what means "wrong credentials". ``retry.py``
imports botocore, which the wal-push import budget forbids
(tests/integration/wal/test_wal_fast_imports.py), so the sets live here,
importing nothing, and both clients import them.
"""

from __future__ import annotations

#: error codes (and HTTP statuses) worth another attempt, in AWS's and
#: S3-compatible servers' spellings
RETRYABLE_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "RequestLimitExceeded",
        "BadDigest",  # the part was damaged on the wire; we still hold its bytes
        "XAmzContentSHA256Mismatch",
        "500",
        "502",
        "503",
        "504",
    }
)
#: the credentials (or the clock they are signed with) are wrong: never retried
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
    }
)
