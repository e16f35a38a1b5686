"""Fixtures shared by the security tests.

``cluster``: one real PG15 cluster per test module with a small ``app``
database, for the tests that back up and then damage or deny what they
wrote (corrupt manifests, an unusable BACKUP_DIR).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.postgres_logical.helpers import SMALL_SQL
from tests.support.pgcluster import PG15_BIN, PgCluster, make_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = make_cluster(PG15_BIN)
    c.psql("CREATE DATABASE app")
    c.psql(SMALL_SQL, "app")
    yield c
    c.destroy()
