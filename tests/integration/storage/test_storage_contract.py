"""The storage contract (tests/support/storage_contract.py) on every backend.

The one list of backends: each name maps to a factory that makes an empty
store. The next backend adds itself to ``BACKENDS`` and nothing else. S3
backends run on SeaweedFS ``weed mini`` (started for the module only when
an S3 parameter runs; the local volume needs no server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seawall.storage import Storage
from seawall.storage.local import LocalStorage
from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.integration.storage.conftest import new_bucket
from tests.support.s3server import S3Server
from tests.support.storage_contract import StorageContract


def _s3(request: pytest.FixtureRequest, prefix: str) -> Storage:
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = new_bucket(server)
    return S3Storage(
        f"s3://{bucket}{prefix}",
        endpoint_url=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        part_size=5 * 1024 * 1024,
        retry=RetryPolicy(deadline=30.0),
        page_size=100,  # pagination exercised with 250 keys, not 1,100
    )


def _s3_versioned(request: pytest.FixtureRequest) -> Storage:
    """A bucket with versioning on: a delete leaves a delete marker, a replace a
    noncurrent version; the contract (what seawall sees) must not change."""
    storage = _s3(request, "/repo")
    assert isinstance(storage, S3Storage)
    server: S3Server = request.getfixturevalue("s3_server")
    server.client().put_bucket_versioning(
        Bucket=storage.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return storage


def _local(request: pytest.FixtureRequest) -> Storage:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return LocalStorage(tmp_path / "vol")


#: every backend the contract runs on: name -> a factory of an empty store
BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Storage]] = {
    "local": _local,
    "s3-bucket-root": lambda request: _s3(request, ""),
    "s3-under-prefix": lambda request: _s3(request, "/team/backups"),
    # characters S3 escapes in XML and URLs, and a non-ASCII one, in the prefix
    "s3-odd-prefix": lambda request: _s3(request, "/o'brien & co+1/b@ck ups=%20/é~x"),
    "s3-versioned-bucket": _s3_versioned,
}


class TestStorageContract(StorageContract):
    @pytest.fixture(params=list(BACKENDS))
    def storage(self, request: pytest.FixtureRequest) -> Iterator[Storage]:
        yield BACKENDS[request.param](request)
