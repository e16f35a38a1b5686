"""Retries for S3 calls and the mapping of S3 failures to seawall's errors.

Why our own retry loop and not botocore's: botocore's retry modes count
attempts, not time, and their classification is not ours to test. Here a
call is retried on what is worth retrying — 5xx, throttling (``SlowDown``,
503), request timeouts, a digest the server computed differently (bytes
damaged on the wire; we still hold them), and connection resets — with
exponential backoff and full jitter, until a deadline. Everything else
(wrong credentials, a missing bucket, access denied) fails at once with one
line naming the fix. No message ever contains a secret: botocore's messages
carry the access key id at most, and we build our own lines anyway.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionError as BotoConnectionError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from seawall.errors import NotFoundError, SeawallError, StorageError
from seawall.storage.s3.codes import CREDENTIAL_CODES, RETRYABLE_CODES

log = logging.getLogger(__name__)

T = TypeVar("T")

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff with full jitter, bounded by total time rather than attempt count."""

    deadline: float = 120.0  # seconds from the first attempt
    base: float = 0.2
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^n)]."""
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))


def error_code(exc: ClientError) -> str:
    err = exc.response.get("Error", {})
    code = str(err.get("Code") or "")
    if not code:
        code = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in RETRYABLE_CODES or (isinstance(status, int) and status >= 500)
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def call(policy: RetryPolicy, what: str, fn: Callable[[], T], translate: Translate) -> T:
    """Run ``fn`` with retries; a non-retryable or out-of-time failure becomes a SeawallError."""
    start = time.monotonic()
    attempt = 0
    while True:
        try:
            return fn()
        except SeawallError:
            raise
        except Exception as exc:
            if not is_retryable(exc):
                raise translate(exc, what) from exc
            pause = policy.delay(attempt)
            if time.monotonic() - start + pause > policy.deadline:
                raise translate(exc, what, gave_up_after=time.monotonic() - start) from exc
            log.debug("S3 %s failed (%s), retrying in %.2fs", what, type(exc).__name__, pause)
            time.sleep(pause)
            attempt += 1


class Translate:
    """Turns a botocore failure into one line naming the problem and the fix."""

    def __init__(
        self,
        url: str,
        bucket: str,
        endpoint: str | None,
        bucket_missing: Callable[[], bool] = lambda: False,
    ) -> None:
        self.url = url
        self.bucket = bucket
        self.where = f"{url} at {endpoint}" if endpoint else url
        #: some servers (SeaweedFS) answer AccessDenied, not NoSuchBucket, for a
        #: write into a missing bucket: asked before blaming the key's rights
        self.bucket_missing = bucket_missing

    def __call__(
        self, exc: BaseException, what: str, gave_up_after: float | None = None
    ) -> SeawallError:
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StorageError(
                f"no S3 credentials for {self.url}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a web identity)"
            )
        if isinstance(exc, ClientError):
            code = error_code(exc)
            if code in NOT_FOUND_CODES:
                return NotFoundError(f"{what} not found in {self.url}")
            if code in CREDENTIAL_CODES:
                return StorageError(
                    f"S3 rejected the credentials for {self.where} ({code}): check "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the clock"
                )
            if code == "NoSuchBucket":
                return self.no_bucket()
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                if self.bucket_missing():
                    return self.no_bucket()
                return StorageError(
                    f"S3 denied {what} in {self.where} (AccessDenied): give this key read and "
                    "write access to the bucket (s3:GetObject, s3:PutObject, s3:DeleteObject, "
                    "s3:ListBucket, s3:AbortMultipartUpload) or use a read-write key"
                )
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            tail = f" (gave up after {gave_up_after:.0f}s of retries)" if gave_up_after else ""
            return StorageError(f"S3 error on {what} in {self.where}: {code} (HTTP {status}){tail}")
        if isinstance(exc, EndpointConnectionError | BotoConnectionError | HTTPClientError):
            tail = f" after {gave_up_after:.0f}s of retries" if gave_up_after is not None else ""
            return StorageError(
                f"cannot reach S3 for {what} in {self.where}{tail} "
                f"({type(exc).__name__}): check the endpoint URL and that the server is up"
            )
        return StorageError(f"S3 failure on {what} in {self.where}: {type(exc).__name__}")

    def no_bucket(self) -> StorageError:
        return StorageError(
            f"bucket {self.bucket!r} of {self.where} does not exist: create it or fix the "
            "bucket name in the repository URL"
        )
