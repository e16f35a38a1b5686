"""BACKUP_DIR / MIRRORS locations: an absolute path or s3://bucket/prefix, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seawall.errors import ConfigError
from seawall.settings import load_settings
from seawall.storage.factory import open_storage
from seawall.storage.location import LocationError, parse_location


@pytest.mark.parametrize(
    ("text", "scheme", "where", "prefix", "shown"),
    [
        ("/backups", "file", "/backups", "", "/backups"),
        ("/backups/", "file", "/backups", "", "/backups"),
        ("/srv//b/./c", "file", "/srv/b/c", "", "/srv/b/c"),
        ("s3://my-bucket", "s3", "my-bucket", "", "s3://my-bucket"),
        ("s3://my-bucket/", "s3", "my-bucket", "", "s3://my-bucket"),
        ("s3://my-bucket/a/b/", "s3", "my-bucket", "a/b", "s3://my-bucket/a/b"),
        ("S3://bkt.example/x//y", "s3", "bkt.example", "x/y", "s3://bkt.example/x/y"),
    ],
)
def test_valid_locations(text: str, scheme: str, where: str, prefix: str, shown: str) -> None:
    loc = parse_location(text)
    assert (loc.scheme, loc.where, loc.prefix, str(loc)) == (scheme, where, prefix, shown)
    assert loc.is_local == (scheme == "file")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("backups", "relative path"),
        ("./backups", "relative path"),
        ("s3:bucket", "relative path"),  # no "//": not a URL, and not absolute
        ("", "empty"),
        ("gs://bucket/x", "unsupported URL scheme gs://"),
        ("file:///backups", "unsupported URL scheme file://"),
        ("s3://", "invalid bucket name"),
        ("s3://Upper/x", "invalid bucket name"),
        ("s3://b/x", "invalid bucket name"),
        ("s3://bucket/../x", "no '.' or '..'"),
    ],
)
def test_invalid_locations(text: str, needle: str) -> None:
    with pytest.raises(LocationError, match=re.escape(needle)):
        parse_location(text)


def test_settings_refuse_a_relative_backup_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUP_DIR", "backups")
    with pytest.raises(ConfigError, match=r"BACKUP_DIR: .*relative path"):
        load_settings()


def test_settings_keep_an_s3_url_and_refuse_it_as_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old defect: Path("s3://b/p") is "s3:/b/p", a local folder under the cwd."""
    monkeypatch.setenv("BACKUP_DIR", "s3://bucket-1/prod/db")
    s = load_settings()
    assert s.repository == "s3://bucket-1/prod/db"
    assert not s.repository_is_local
    with pytest.raises(ConfigError, match="needs a local repository"):
        _ = s.backup_dir


def test_settings_path_still_a_path(tmp_path: Path) -> None:
    s = load_settings(backup_dir=tmp_path)
    assert s.backup_dir == tmp_path and s.repository == str(tmp_path)


def test_factory_builds_the_backend_the_location_names(tmp_path: Path) -> None:
    local = open_storage(str(tmp_path))
    vol = local.local_volume()
    assert vol is not None and vol.root == tmp_path
    remote = open_storage(
        "s3://bucket-1/p",
        env={
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
        },
    )
    assert remote.local_volume() is None
    assert remote.describe() == "s3://bucket-1/p"
    with pytest.raises(ConfigError, match=r"MIRRORS: .*unsupported URL scheme"):
        open_storage("gs://x/y", what="MIRRORS")
