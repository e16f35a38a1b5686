"""Configuration and errors of the lean S3 client: the standard AWS variables, nothing else.

Read by :func:`config_from_env` from the environment only; anything that
needs botocore's credential provider chain (a profile, web identity,
container or instance credentials) is :class:`NeedsGeneral`, and the caller
takes the general (boto3) path (docs/adr/0013-wal-push-to-object-storage.md).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

GENERAL_ONLY_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class NeedsGeneral(Exception):
    """The lean client cannot serve this configuration; the general (boto3) path must."""


class S3Error(Exception):
    """An S3 request failed for good: ``message`` is one line naming the fix.

    ``kind``: ``credentials`` | ``denied`` | ``no-bucket`` | ``unreachable`` |
    ``server`` | ``config``. Nothing in ``message`` is secret.
    """

    def __init__(self, kind: str, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = code


class Config:
    """Where and as whom: everything the lean client reads from the environment."""

    __slots__ = (
        "access_key",
        "bucket",
        "ca_bundle",
        "host",
        "port",
        "prefix",
        "region",
        "secret_key",
        "secure",
        "sse",
        "sse_kms_key_id",
        "token",
        "url",
        "virtual",
    )

    def __init__(
        self,
        url: str,
        *,
        access_key: str,
        secret_key: str,
        token: str | None = None,
        region: str = "us-east-1",
        endpoint: str | None = None,
        addressing: str | None = None,
        ca_bundle: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
    ) -> None:
        if not url.startswith("s3://"):
            raise S3Error("config", f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise S3Error("config", f"S3 URL {url!r} names no bucket (expected s3://bucket/prefix)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.region = region
        if endpoint:
            scheme, sep, rest = endpoint.partition("://")
            if not sep or scheme not in ("http", "https"):
                raise S3Error(
                    "config", f"S3 endpoint {endpoint!r} is not an http:// or https:// URL"
                )
            hostport = rest.split("/", 1)[0]
        else:
            scheme, hostport = "https", f"s3.{region}.amazonaws.com"
        self.secure = scheme == "https"
        if hostport.startswith("["):  # [IPv6]:port
            host, _, tail = hostport.partition("]")
            host, port = host + "]", tail.lstrip(":")
        else:
            host, _, port = hostport.partition(":")
        if not host or (port and not port.isdigit()):
            raise S3Error("config", f"S3 endpoint {endpoint!r} has no valid host[:port]")
        self.host = host
        self.port = int(port) if port else (443 if self.secure else 80)
        style = (addressing or "auto").lower()
        if style == "auto":  # as storage/s3/config.py: path-style for a custom endpoint
            style = "path" if endpoint else "virtual"
        if style not in ("path", "virtual"):
            raise S3Error("config", f"S3_ADDRESSING_STYLE must be path or virtual (got {style!r})")
        self.virtual = style == "virtual"
        self.ca_bundle = ca_bundle
        if sse and sse not in ("AES256", "aws:kms"):
            raise S3Error("config", f"S3_SSE must be AES256 or aws:kms (got {sse!r})")
        if sse_kms_key_id and sse != "aws:kms":
            raise S3Error("config", "S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms")
        self.sse = sse or None
        self.sse_kms_key_id = sse_kms_key_id or None

    def key(self, rel: str) -> str:
        """The object key of ``rel`` under the repository's prefix."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def where(self) -> str:
        return f"{self.url} at {'https' if self.secure else 'http'}://{self.host}:{self.port}"


def _env(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError as exc:
        raise S3Error(
            "config",
            f"{name}_FILE: cannot read {path} ({exc.strerror}); point it at a readable file",
        ) from exc


def config_from_env(url: str, env: Mapping[str, str] | None = None) -> Config:
    """The lean client's configuration from the standard AWS variables.

    Raises :class:`NeedsGeneral` when the credentials must come from
    botocore's provider chain (a profile, web identity, container or
    instance credentials, or none set at all), and :class:`S3Error` (kind
    ``config``) for a value that is wrong either way.
    """
    env = os.environ if env is None else env
    for name in GENERAL_ONLY_VARS:
        if env.get(name):
            raise NeedsGeneral(f"{name} is set: credentials come from botocore")
    access = _secret(env, "AWS_ACCESS_KEY_ID")
    secret = _secret(env, "AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise NeedsGeneral("no static credentials in the environment")
    return Config(
        url,
        access_key=access,
        secret_key=secret,
        token=_secret(env, "AWS_SESSION_TOKEN"),
        region=_env(env, "AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
        endpoint=_env(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        addressing=_env(env, "SEAWALL_S3_ADDRESSING_STYLE", "S3_ADDRESSING_STYLE"),
        ca_bundle=_env(env, "AWS_CA_BUNDLE"),
        sse=_env(env, "SEAWALL_S3_SSE", "S3_SSE"),
        sse_kms_key_id=_env(env, "SEAWALL_S3_SSE_KMS_KEY_ID", "S3_SSE_KMS_KEY_ID"),
    )
