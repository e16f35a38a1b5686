"""Issue 14: a repository on S3 that refuses us — one clear line, exit 7 (docs/exit-codes.md).

Wrong credentials, a bucket that does not exist, a key that may read but
not write: each met for real on the SeaweedFS server (its IAM identities;
the read-only one has only the Read and List actions), through the
installed CLI. The repository check before a run (one listing: the bucket
answers) catches the first two before anything starts; a read-only key is
met at the run's first write, the series lock, so no run begins and nothing
can be recorded in a bucket that refuses writes: the line and the exit code
are the record. Reading with a read-only key keeps working (a restore host's
key).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.storage.conftest import new_bucket
from tests.integration.storage.test_s3_full_cycle import PREFIX, aws_env, keys_in
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server


def _env(pg: PgCluster, server: S3Server, repo: str, **aws: str) -> dict[str, str]:
    env = pg.env(BACKUP_DIR=repo, DB_NAME="app", PRUNE_AFTER_BACKUP="false", LOG_FORMAT="text")
    env = {k: v for k, v in env.items() if not k.startswith(("AWS_", "S3_"))}
    return env | aws_env(server) | aws


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def app(pg: PgCluster) -> PgCluster:
    pg.psql("CREATE DATABASE app")
    pg.psql("CREATE TABLE t AS SELECT generate_series(1, 50) AS id", db="app")
    return pg


def test_wrong_credentials_are_one_line_exit_7(app: PgCluster, s3_server: S3Server) -> None:
    repo = f"s3://{new_bucket(s3_server)}/{PREFIX}"
    wrong = "x" * 40
    env = _env(app, s3_server, repo, AWS_SECRET_ACCESS_KEY=wrong)
    for args in (["postgres", "backup"], ["postgres", "list"], ["prune", "--dry-run"]):
        res = run_seawall(args, env)
        assert res.returncode == 7, (args, res.stdout, res.stderr)
        line = _one_line(res.stderr)
        assert "rejected the credentials" in line and "AWS_SECRET_ACCESS_KEY" in line, line
        assert wrong not in res.stderr + res.stdout
        assert s3_server.access_key in env["AWS_ACCESS_KEY_ID"]
    assert keys_in(s3_server, repo.split("/")[2]) == []


def test_missing_bucket_is_one_line_exit_7(app: PgCluster, s3_server: S3Server) -> None:
    repo = f"s3://no-such-bucket-{os.urandom(4).hex()}/{PREFIX}"
    env = _env(app, s3_server, repo)
    for args in (["postgres", "backup"], ["postgres", "list"], ["postgres", "wal-check"]):
        res = run_seawall(args, env)
        assert res.returncode == 7, (args, res.stdout, res.stderr)
        line = _one_line(res.stderr)
        assert "does not exist" in line and "bucket" in line, line


def test_read_only_key_cannot_back_up_but_can_list_and_restore(
    app: PgCluster, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_server)
    repo = f"s3://{bucket}/{PREFIX}"
    rw = _env(app, s3_server, repo)
    ro = _env(app, s3_server, repo, **aws_env(s3_server, read_only=True))

    res = run_seawall(["postgres", "backup"], ro)
    assert res.returncode == 7, (res.stdout, res.stderr)
    line = _one_line(res.stderr)
    assert "denied" in line and "write access" in line, line
    # no run started: the first write (the series lock) was refused, and a
    # bucket that refuses writes cannot hold a failure record either
    assert keys_in(s3_server, bucket) == []

    res = run_seawall(["postgres", "backup", "--json"], rw)
    assert res.returncode == 0, res.stderr
    backup_id = json.loads(res.stdout)[0]["id"]

    listed = run_seawall(["postgres", "list", "--json"], ro)
    assert listed.returncode == 0, listed.stderr
    assert [b["id"] for b in json.loads(listed.stdout)] == [backup_id]
    res = run_seawall(
        ["postgres", "restore", backup_id, "--database", "app", "--target-db", "app_ro"], ro
    )
    assert res.returncode == 0, res.stderr
    assert app.psql("SELECT count(*) FROM t", db="app_ro") == "50"
    # the failed attempt left nothing, the good backup is untouched
    assert len([k for k in keys_in(s3_server, bucket) if k.endswith("manifest.json")]) == 1


def test_a_failed_run_is_recorded_in_the_bucket(app: PgCluster, s3_server: S3Server) -> None:
    """Where a run was attempted (the bucket takes writes, the source fails),
    its failure is recorded in the bucket as on a volume: a failed manifest
    in the series, the good backup untouched."""
    bucket = new_bucket(s3_server)
    env = _env(app, s3_server, f"s3://{bucket}/{PREFIX}")
    assert run_seawall(["postgres", "backup"], env).returncode == 0
    app.psql("DROP DATABASE app")
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 5, (res.stdout, res.stderr)
    client = s3_server.client()
    found = [k for k in keys_in(s3_server, bucket) if k.endswith("manifest.json")]
    assert len(found) == 2 and all("/postgresql/logical/app/" in k for k in found), found
    statuses = sorted(
        json.loads(client.get_object(Bucket=bucket, Key=k)["Body"].read())["status"] for k in found
    )
    assert statuses == ["failed", "success"], statuses
    assert not [k for k in keys_in(s3_server, bucket) if "/.locks/" in k]
