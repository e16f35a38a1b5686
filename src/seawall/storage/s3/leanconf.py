"""Configuration and errors of the lean S3 client: the standard AWS variables, nothing else.

:class:`AwsEnv` is the one reader of those variables (the general backend's
``s3_options`` is built on it too). Read by :func:`config_from_env` from the
environment only; anything that
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


#: the three secrets, each also read from ``NAME_FILE`` (a mounted Secret)
SECRET_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SSE_VALUES = ("AES256", "aws:kms")
ADDRESSING_STYLES = ("path", "virtual", "auto")


def _env(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` wins over ``NAME_FILE``; a file that cannot be read, or is empty, is an error."""
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
    except OSError as exc:
        raise S3Error(
            "config",
            f"{name}_FILE: cannot read {path} ({exc.strerror}); point it at a readable file",
        ) from exc
    if not text:
        raise S3Error("config", f"{name}_FILE: {path} is empty; put the secret in it")
    return text


class AwsEnv:
    """The S3 settings of an environment, read and checked once for both clients.

    Why one reader: the lean wal-push client (:func:`config_from_env`) and
    the general backend (``storage/s3/config.py: s3_options``) must read the
    same variables with the same rules — a ``*_FILE`` secret, an endpoint, an
    SSE setting honoured by one path and not the other would store WAL and
    backups differently. This module is standard library only, so the lean
    path's import budget allows it; the general one builds on it.

    Values: ``None`` when unset. ``general`` names a variable that means
    "credentials come from botocore's provider chain" (the lean client
    cannot serve that). Secrets never appear in ``repr`` or messages.
    """

    __slots__ = (
        "access_key",
        "addressing",
        "ca_bundle",
        "endpoint",
        "general",
        "region",
        "secret_key",
        "sse",
        "sse_kms_key_id",
        "token",
    )

    def __init__(self, env: Mapping[str, str]) -> None:
        self.general = next((n for n in GENERAL_ONLY_VARS if env.get(n)), None)
        self.access_key = _secret(env, "AWS_ACCESS_KEY_ID")
        self.secret_key = _secret(env, "AWS_SECRET_ACCESS_KEY")
        self.token = _secret(env, "AWS_SESSION_TOKEN")
        self.region = _env(env, "AWS_REGION", "AWS_DEFAULT_REGION")
        self.endpoint = _env(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise S3Error(
                "config",
                "AWS_ENDPOINT_URL: expected http://host:port or https://host:port "
                f"(got {self.endpoint[:60]!r})",
            )
        style = _env(env, "SEAWALL_S3_ADDRESSING_STYLE", "S3_ADDRESSING_STYLE")
        self.addressing = style.lower() if style else None
        if self.addressing is not None and self.addressing not in ADDRESSING_STYLES:
            raise S3Error(
                "config", f"S3_ADDRESSING_STYLE: expected path or virtual (got {style!r})"
            )
        self.ca_bundle = _env(env, "AWS_CA_BUNDLE")
        self.sse = _env(env, "SEAWALL_S3_SSE", "S3_SSE")
        if self.sse is not None and self.sse not in SSE_VALUES:
            raise S3Error("config", f"S3_SSE: expected AES256 or aws:kms (got {self.sse!r})")
        self.sse_kms_key_id = _env(env, "SEAWALL_S3_SSE_KMS_KEY_ID", "S3_SSE_KMS_KEY_ID")
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise S3Error("config", "S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms")

    def __repr__(self) -> str:
        return f"AwsEnv(endpoint={self.endpoint!r}, region={self.region!r}, sse={self.sse!r})"


def config_from_env(url: str, env: Mapping[str, str] | None = None) -> Config:
    """The lean client's configuration from the standard AWS variables (:class:`AwsEnv`).

    Raises :class:`NeedsGeneral` when the credentials must come from
    botocore's provider chain (a profile, web identity, container or
    instance credentials, or none set at all), and :class:`S3Error` (kind
    ``config``) for a value that is wrong either way.
    """
    aws = AwsEnv(os.environ if env is None else env)
    if aws.general:
        raise NeedsGeneral(f"{aws.general} is set: credentials come from botocore")
    if not aws.access_key or not aws.secret_key:
        raise NeedsGeneral("no static credentials in the environment")
    return Config(
        url,
        access_key=aws.access_key,
        secret_key=aws.secret_key,
        token=aws.token,
        region=aws.region or "us-east-1",
        endpoint=aws.endpoint,
        addressing=aws.addressing,
        ca_bundle=aws.ca_bundle,
        sse=aws.sse,
        sse_kms_key_id=aws.sse_kms_key_id,
    )
