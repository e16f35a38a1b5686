"""The storage contract on S3 (SeaweedFS ``weed mini``), exactly as on the local volume.

Server-backed backends join ``SERVER_BACKENDS``; each name maps to a
factory that makes an empty store on the module's server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from seawall.storage import Storage
from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.integration.storage.conftest import new_bucket
from tests.support.s3server import S3Server
from tests.support.storage_contract import StorageContract


def _s3(server: S3Server, prefix: str) -> Storage:
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


SERVER_BACKENDS: dict[str, Callable[[S3Server], Storage]] = {
    "s3-bucket-root": lambda server: _s3(server, ""),
    "s3-under-prefix": lambda server: _s3(server, "/team/backups"),
}


class TestServerBackends(StorageContract):
    @pytest.fixture(params=sorted(SERVER_BACKENDS))
    def storage(self, request: pytest.FixtureRequest, s3_server: S3Server) -> Iterator[Storage]:
        yield SERVER_BACKENDS[request.param](s3_server)
