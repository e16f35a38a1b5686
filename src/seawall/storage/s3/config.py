"""S3 options from the environment, in the ecosystem's own terms.

Why the standard AWS variables and not seawall-specific ones: operators
already have them in their Secrets, service accounts (IRSA / web identity)
and ``~/.aws`` files, and every S3 tool reads the same names. botocore reads
most of them itself (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``, ``AWS_CA_BUNDLE``); this
module adds only what the SDK lacks:

* ``*_FILE`` variants for the three secrets (a mounted Secret file, never argv);
* the endpoint (``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``), read here
  so that a custom endpoint implies path-style addressing, which is what
  S3-compatible servers (MinIO, SeaweedFS, Ceph RGW) expect;
* ``S3_ADDRESSING_STYLE`` (``path`` | ``virtual``) to override that;
* ``S3_SSE`` (``AES256`` | ``aws:kms``) and ``S3_SSE_KMS_KEY_ID``:
  server-side encryption on top of seawall's own age encryption.

Secret values are read into memory only; error messages name the variable,
never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from seawall.errors import ConfigError

SECRET_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SSE_VALUES = ("AES256", "aws:kms")
ADDRESSING_STYLES = ("path", "virtual", "auto")


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


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` wins over ``NAME_FILE``; a file that cannot be read is a config error."""
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
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"{name}_FILE: {path} is empty")
    return text


def s3_options(env: Mapping[str, str]) -> S3Options:
    """Read the S3 options from ``env`` (the process environment in production)."""
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            f"AWS_ENDPOINT_URL: expected http://host:port or https://host:port (got {endpoint[:60]!r})"
        )
    style = (env.get("S3_ADDRESSING_STYLE") or "").strip().lower() or None
    if style is not None and style not in ADDRESSING_STYLES:
        raise ConfigError(f"S3_ADDRESSING_STYLE: expected path or virtual (got {style!r})")
    extra: dict[str, str] = {}
    sse = (env.get("S3_SSE") or "").strip()
    if sse:
        if sse not in SSE_VALUES:
            raise ConfigError(f"S3_SSE: expected AES256 or aws:kms (got {sse!r})")
        extra["ServerSideEncryption"] = sse
        kms = (env.get("S3_SSE_KMS_KEY_ID") or "").strip()
        if kms:
            if sse != "aws:kms":
                raise ConfigError("S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms")
            extra["SSEKMSKeyId"] = kms
    elif env.get("S3_SSE_KMS_KEY_ID"):
        raise ConfigError("S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms")
    return S3Options(
        endpoint_url=endpoint,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        access_key=_secret(env, "AWS_ACCESS_KEY_ID"),
        secret_key=_secret(env, "AWS_SECRET_ACCESS_KEY"),
        session_token=_secret(env, "AWS_SESSION_TOKEN"),
        addressing_style=style,
        ca_bundle=env.get("AWS_CA_BUNDLE") or None,
        extra_put_args=extra,
    )
