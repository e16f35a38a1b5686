"""What ``BACKUP_DIR`` (or a ``MIRRORS`` entry) names: a local directory or an S3 URL.

Why a parser of its own: before it, ``BACKUP_DIR=s3://bucket/prefix`` was
taken as a path and silently wrote into a folder named ``s3:`` under the
current directory, and any relative path was accepted (a cron job's working
directory decided where backups went). Now a location is either an absolute
path or a supported URL; everything else is refused before anything is
written. Stdlib only: the lean wal-push and settings both use it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

#: URL schemes seawall can store to. ``file://`` is not one: a path is clearer.
SCHEMES = ("s3",)

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
#: S3 bucket naming rules (3-63 chars, lower case, digits, dots, hyphens).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class LocationError(ValueError):
    """A repository location that is neither an absolute path nor a supported URL."""


@dataclass(frozen=True)
class Location:
    """A parsed repository location: ``scheme`` is ``"file"`` for a local path."""

    scheme: str
    #: the local path (scheme "file") or the bucket (scheme "s3")
    where: str
    #: key prefix inside the bucket, without leading/trailing slashes ("" for none)
    prefix: str = ""

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def __str__(self) -> str:
        if self.is_local:
            return self.where
        return (
            f"{self.scheme}://{self.where}/{self.prefix}"
            if self.prefix
            else (f"{self.scheme}://{self.where}")
        )


def parse_location(text: str | os.PathLike[str]) -> Location:
    """Parse a repository location; LocationError names what is wrong and the fix."""
    raw = os.fspath(text).strip()
    if not raw:
        raise LocationError("is empty: set an absolute path or an s3://bucket/prefix URL")
    m = _SCHEME_RE.match(raw)
    if m and raw[m.end() : m.end() + 2] == "//":
        scheme = m.group(1).lower()
        if scheme not in SCHEMES:
            raise LocationError(
                f"unsupported URL scheme {scheme}://: use an absolute path or s3://bucket/prefix"
            )
        rest = raw[m.end() + 2 :]
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET_RE.match(bucket):
            raise LocationError(
                f"invalid bucket name {bucket!r} in {scheme}://: expected s3://bucket/prefix "
                "(3-63 lower-case letters, digits, dots or hyphens)"
            )
        parts = [p for p in prefix.split("/") if p]
        if any(p in (".", "..") for p in parts) or "\x00" in prefix:
            raise LocationError(f"invalid key prefix {prefix!r}: no '.' or '..' components")
        return Location(scheme, bucket, "/".join(parts))
    if "\x00" in raw:
        raise LocationError("contains a NUL byte")
    if not raw.startswith("/"):
        raise LocationError(
            f"{raw!r} is a relative path: use an absolute path (e.g. /backups) or s3://bucket/prefix"
        )
    return Location("file", os.path.normpath(raw) if raw != "/" else "/")
