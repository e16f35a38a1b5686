"""The one place that builds a repository backend from a location.

Why one factory: every layer above ``storage/`` speaks the
:class:`~seawall.storage.base.Storage` protocol; if engines, the exporter or
the WAL code built backends themselves, a new backend (or a wrapper such as
throttling or mirrors) would have to be taught to each of them. An import
contract keeps ``seawall.storage.local`` and ``seawall.storage.s3`` out of
every layer above storage except this module.

boto3 is imported only when an ``s3://`` location is opened, so a local
repository never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from seawall.errors import ConfigError
from seawall.storage.base import Storage
from seawall.storage.location import Location, LocationError, parse_location

#: S3 client timeouts (seconds) of a repository without a deadline (the primary)
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


def location_of(text: str | os.PathLike[str], what: str = "BACKUP_DIR") -> Location:
    """Parse a location, turning a bad one into a ConfigError naming the variable."""
    try:
        return parse_location(text)
    except LocationError as exc:
        raise ConfigError(f"invalid configuration: {what}: {exc}") from None


def open_repository(
    primary: str | os.PathLike[str] | Location,
    mirrors: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    mirror_timeout: float | None = None,
    max_rate: int = 0,
) -> Storage:
    """The repository: the primary alone, or wrapped with its ``MIRRORS``.

    ``max_rate`` (``MAX_RATE``, bytes per second, 0 = unlimited) holds the
    writes to each repository to that average (storage/throttle.py): the
    primary, and each mirror's copies, each with its own token bucket.

    A mirror on S3 retries for ``mirror_timeout`` seconds at most (not the
    primary's deadline), and none of its requests waits longer than that for
    a connection or an answer (a mirror that hangs holds a write about
    ``mirror_timeout``, not S3's 60 s read timeout): the first failure marks
    the mirror down for the process and later writes are only recorded
    (storage/mirror.py).
    """
    from seawall.storage.throttle import throttle

    storage = throttle(open_storage(primary, env), max_rate)
    if not mirrors:
        return storage
    from seawall.storage.mirror import Mirror, MirroredStorage

    return MirroredStorage(
        storage,
        [
            Mirror(
                str(loc),
                throttle(
                    open_storage(loc, env, "MIRRORS", retry_deadline=mirror_timeout), max_rate
                ),
            )
            for loc in (location_of(m, "MIRRORS") for m in mirrors)
        ],
    )


def open_storage(
    location: str | os.PathLike[str] | Location,
    env: Mapping[str, str] | None = None,
    what: str = "BACKUP_DIR",
    *,
    retry_deadline: float | None = None,
) -> Storage:
    """A backend for ``location``: a local directory or an S3 bucket/prefix."""
    loc = location if isinstance(location, Location) else location_of(location, what)
    if loc.is_local:
        from seawall.storage.local import LocalStorage

        return LocalStorage(loc.where)
    from seawall.storage.s3.backend import S3Storage
    from seawall.storage.s3.config import s3_options
    from seawall.storage.s3.retry import RetryPolicy

    opts = s3_options(os.environ if env is None else env)
    # A deadline bounds retries, not one request: a server that accepts and never
    # answers would hold each request for the client's own timeouts (60 s read).
    # With a deadline (a mirror's MIRROR_TIMEOUT) no request waits longer than it.
    cap = READ_TIMEOUT if retry_deadline is None else retry_deadline
    return S3Storage(
        str(loc),
        endpoint_url=opts.endpoint_url,
        region=opts.region,
        access_key=opts.access_key,
        secret_key=opts.secret_key,
        session_token=opts.session_token,
        addressing_style=opts.addressing_style,
        ca_bundle=opts.ca_bundle,
        extra_put_args=opts.extra_put_args,
        retry=RetryPolicy(deadline=retry_deadline) if retry_deadline is not None else None,
        connect_timeout=min(CONNECT_TIMEOUT, cap),
        read_timeout=min(READ_TIMEOUT, cap),
    )


#: non-secret variables a child process (restore_command's wal-fetch) needs to
#: open the same object storage repository as its parent
S3_CHILD_VARS = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "S3_ADDRESSING_STYLE",
    "S3_SSE",
    "S3_SSE_KMS_KEY_ID",
)


def child_access(
    location: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """What a child process needs to open ``location``: (plain variables, secrets).

    Why: PostgreSQL runs ``restore_command`` with its own environment, so a
    PITR restore hands the repository to its ``wal-fetch`` through a
    wrapper script. Secrets (the AWS keys, read here also from ``*_FILE``)
    are returned apart so the caller writes them to private files and passes
    ``NAME_FILE``: never a secret in a script, argv or a log. A local
    repository needs nothing.
    """
    loc = location_of(location)
    if loc.is_local:
        return {}, {}
    from seawall.storage.s3.config import SECRET_VARS, s3_options

    src = os.environ if env is None else env
    plain = {k: src[k] for k in S3_CHILD_VARS if src.get(k)}
    opts = s3_options(src)
    values = (opts.access_key, opts.secret_key, opts.session_token)
    if not (opts.access_key and opts.secret_key):
        profile = _profile_keys(src)
        if profile is not None:  # the child cannot read the profile: its keys instead
            values, region = profile
            for name in _PROFILE_VARS:
                plain.pop(name, None)
            if region and not (plain.get("AWS_REGION") or plain.get("AWS_DEFAULT_REGION")):
                plain["AWS_REGION"] = region
    secrets = {name: v for name, v in zip(SECRET_VARS, values, strict=True) if v}
    return plain, secrets


#: where a profile lives: useless to a child whose HOME and user differ
_PROFILE_VARS = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def _profile_keys(
    env: Mapping[str, str],
) -> tuple[tuple[str | None, str | None, str | None], str | None] | None:
    """The static keys (and region) of the profile botocore would use, if it is one.

    Why: restore_command's wal-fetch runs as the postgres user with HOME set
    to the recovery's sidecar, so ``~/.aws`` of the operator (root's, 0600)
    is out of its reach and ``AWS_PROFILE`` alone made every fetch fail.
    Only keys written in the shared files are resolved: a web identity,
    an assumed role or SSO yield temporary keys that would expire during a
    long recovery, so their variables are passed on as before.
    """
    named = env.get("AWS_PROFILE") or env.get("AWS_SHARED_CREDENTIALS_FILE")
    if not named and not os.path.exists(os.path.expanduser("~/.aws/credentials")):
        return None
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session(profile_name=env.get("AWS_PROFILE") or None)
        creds = session.get_credentials()
    except BotoCoreError:
        return None  # the parent's own S3 client says what is wrong, once
    if creds is None or creds.method not in ("shared-credentials-file", "config-file"):
        return None
    frozen = creds.get_frozen_credentials()
    return (frozen.access_key, frozen.secret_key, frozen.token), session.region_name
