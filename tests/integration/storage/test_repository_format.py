"""A repository written by a newer seawall is refused: one line, exit 9.

``seawall init`` writes a marker (``.seawall-repository``) whose
``format_version`` names the repository layout. Before, nothing read it: an
older seawall would list, prune or back up into a repository whose catalog,
WAL archive or locks a newer one had laid out differently. Checked here for
real on a local volume and on the SeaweedFS server, through the installed
CLI, for reading and writing commands; the current format, a repository
without a marker and a damaged marker keep working.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.storage.conftest import new_bucket
from tests.integration.storage.test_s3_full_cycle import PREFIX, aws_env
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

MARKER = ".seawall-repository"
NEWER = json.dumps({"format_version": 2, "created": "2030-01-01T00:00:00+00:00"}) + "\n"
COMMANDS = (
    ["postgres", "list"],
    ["postgres", "wal-check"],
    ["prune", "--dry-run"],
    ["postgres", "backup"],
    ["init"],
)


def _env(pg: PgCluster, repo: str, **extra: str) -> dict[str, str]:
    env = pg.env(BACKUP_DIR=repo, DB_NAME="app", PRUNE_AFTER_BACKUP="false", LOG_FORMAT="text")
    env = {k: v for k, v in env.items() if not k.startswith(("AWS_", "S3_"))}
    return env | extra


def _refused(args: list[str], env: dict[str, str], repo: str) -> None:
    res = run_seawall(args, env)
    assert res.returncode == 9, (args, res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (args, res.stderr)
    assert f"repository {repo} has format 2" in lines[0], lines[0]
    assert "upgrade seawall" in lines[0], lines[0]


@pytest.fixture
def app(pg: PgCluster) -> PgCluster:
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT generate_series(1, 50) AS id", db="app")
    return pg


def test_local_repository_of_a_newer_format_is_refused(app: PgCluster, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    env = _env(app, str(repo))
    assert run_seawall(["init"], env).returncode == 0
    marker = json.loads((repo / MARKER).read_text())
    assert marker["format_version"] == 1
    # the current format works
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    (repo / MARKER).write_text(NEWER)
    for args in COMMANDS:
        _refused(args, env, str(repo))
    # nothing written, the newer marker left as it was
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
    assert (repo / MARKER).read_text() == NEWER


def test_local_repository_without_or_with_a_damaged_marker_is_format_1(
    app: PgCluster, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    env = _env(app, str(repo))
    res = run_seawall(["postgres", "backup"], env)  # made by a first backup: no marker
    assert res.returncode == 0, res.stderr
    assert not (repo / MARKER).exists()
    assert run_seawall(["postgres", "list"], env).returncode == 0
    (repo / MARKER).write_bytes(b"\x00garbage{")
    res = run_seawall(["postgres", "list"], env)
    assert res.returncode == 0, res.stderr
    assert "unreadable repository marker ignored" in res.stderr


def test_s3_repository_of_a_newer_format_is_refused(app: PgCluster, s3_server: S3Server) -> None:
    bucket = new_bucket(s3_server)
    repo = f"s3://{bucket}/{PREFIX}"
    env = _env(app, repo, **aws_env(s3_server))
    res = run_seawall(["init"], env)
    assert res.returncode == 0, res.stderr
    client = s3_server.client()
    body = client.get_object(Bucket=bucket, Key=f"{PREFIX}/{MARKER}")["Body"].read()
    assert json.loads(body)["format_version"] == 1
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 0, res.stderr
    client.put_object(Bucket=bucket, Key=f"{PREFIX}/{MARKER}", Body=NEWER.encode())
    before = client.list_objects_v2(Bucket=bucket)["KeyCount"]
    for args in COMMANDS:
        _refused(args, env, repo)
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == before


def test_wal_fetch_refuses_a_newer_repository(app: PgCluster, tmp_path: Path) -> None:
    """wal-fetch (PostgreSQL's restore_command) says so loudly instead of the
    quiet "not archived" exit 1 that would end recovery early."""
    repo = tmp_path / "repo"
    env = _env(app, str(repo))
    assert run_seawall(["init"], env).returncode == 0
    (repo / MARKER).write_text(NEWER)
    target = tmp_path / "seg"
    res = run_seawall(
        ["postgres", "wal-fetch", "000000010000000000000001", str(target)],
        env | {"SEAWALL_WAL_FETCH_VERBOSE": "1"},
    )
    assert res.returncode == 9, res.stdout + res.stderr
    assert "has format 2" in res.stderr and not target.exists()
