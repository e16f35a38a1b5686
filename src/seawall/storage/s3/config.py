"""S3 options from the environment, in the ecosystem's own terms.

Why the standard AWS variables and not seawall-specific ones: operators
already have them in their Secrets, service accounts (IRSA / web identity)
and ``~/.aws`` files, and every S3 tool reads the same names. botocore reads
most of them itself (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``, ``AWS_CA_BUNDLE``); seawall
adds only what the SDK lacks:

* ``*_FILE`` variants for the three secrets (a mounted Secret file, never argv);
* the endpoint (``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``), read here
  so that a custom endpoint implies path-style addressing, which is what
  S3-compatible servers (MinIO, SeaweedFS, Ceph RGW) expect;
* ``S3_ADDRESSING_STYLE`` (``path`` | ``virtual``) to override that;
* ``S3_SSE`` (``AES256`` | ``aws:kms``) and ``S3_SSE_KMS_KEY_ID``:
  server-side encryption on top of seawall's own age encryption.

The variables are read by one reader, :class:`~seawall.storage.s3.leanconf.AwsEnv`
(standard library only, shared with the lean wal-push client), so both S3
paths follow the same rules; this module turns its result into the boto3
backend's arguments and its errors into :class:`ConfigError` (exit 2).
Secret values are read into memory only; error messages name the variable,
never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from seawall.errors import ConfigError
from seawall.storage.s3.leanconf import SECRET_VARS, AwsEnv, S3Error

__all__ = ["SECRET_VARS", "S3Options", "s3_options"]


@dataclass(frozen=True)
class S3Options:
    """Constructor arguments for :class:`~seawall.storage.s3.backend.S3Storage`."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    addressing_style: str | None = None
    ca_bundle: str | None = None
    extra_put_args: dict[str, str] = field(default_factory=dict)


def s3_options(env: Mapping[str, str]) -> S3Options:
    """Read the S3 options from ``env`` (the process environment in production)."""
    try:
        aws = AwsEnv(env)
    except S3Error as exc:
        raise ConfigError(str(exc)) from None
    extra: dict[str, str] = {}
    if aws.sse:
        extra["ServerSideEncryption"] = aws.sse
    if aws.sse_kms_key_id:
        extra["SSEKMSKeyId"] = aws.sse_kms_key_id
    return S3Options(
        endpoint_url=aws.endpoint,
        region=aws.region,
        access_key=aws.access_key,
        secret_key=aws.secret_key,
        session_token=aws.token,
        addressing_style=aws.addressing,
        ca_bundle=aws.ca_bundle,
        extra_put_args=extra,
    )
