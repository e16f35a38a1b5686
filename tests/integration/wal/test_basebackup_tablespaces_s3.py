"""A cluster with a tablespace, S3 as the only repository: base backup,
PITR to a mapped location, and a drill (ADR 0019)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import SEAWALL
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.integration.storage.test_s3_full_cycle import (
    PREFIX,
    S3Archived,
    _secret_file,
    keys_in,
    secrets_dir,
)
from tests.integration.wal.helpers import pitr
from tests.integration.wal.test_basebackup_tablespaces import CONTENT, _dir, _parent, dirs
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

__all__ = ["dirs", "s3_server", "secrets_dir"]


def test_tablespace_base_backup_pitr_and_drill_with_s3_as_the_repository(
    pg_factory: Callable[..., PgCluster],
    s3_server: S3Server,
    age_keys: tuple[Path, str],
    secrets_dir: Path,
    restores: list[Any],
    dirs: list[Path],
) -> None:
    key, public = age_keys
    bucket = new_bucket(s3_server)
    repo = f"s3://{bucket}/{PREFIX}"
    ak = _secret_file(secrets_dir, "access-key", s3_server.access_key)
    sk = _secret_file(secrets_dir, "secret-key", s3_server.secret_key)
    command = (
        f"'env BACKUP_DIR={repo} PG_CLUSTER_NAME=main ENCRYPTION=true "
        f"ENCRYPTION_RECIPIENTS={public} AWS_ENDPOINT_URL={s3_server.endpoint} "
        f"AWS_ACCESS_KEY_ID_FILE={ak} AWS_SECRET_ACCESS_KEY_FILE={sk} "
        f"{SEAWALL} postgres wal-push %p'"
    )
    pg = pg_factory(
        extra_conf={"archive_mode": "on", "archive_command": command, "wal_keep_size": "0"}
    )
    arch = S3Archived(pg, repo, key, public)  # type: ignore[arg-type]
    arch.server = s3_server
    pg.psql("CHECKPOINT")
    arch.switch_and_wait(timeout=60)
    location = _dir()
    dirs.append(location)
    pg.psql(f"CREATE TABLESPACE cold LOCATION '{location}'")
    pg.psql(
        "CREATE TABLE t (i int PRIMARY KEY, v text) TABLESPACE cold; "
        "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g"
    )
    m = arch.basebackup()
    oid = m["postgres"]["tablespaces"][0]["oid"]  # type: ignore[index]
    stored = keys_in(s3_server, bucket, f"{PREFIX}/postgresql/base/main/{m['id']}/")
    assert f"{PREFIX}/postgresql/base/main/{m['id']}/tablespace-{oid}.tar.zst.age" in stored
    pg.psql("INSERT INTO t SELECT g, 'late' FROM generate_series(3001, 3500) g")
    arch.switch_and_wait(timeout=60)
    expected = pg.psql(CONTENT.format(table="t"))

    mapped = _parent() / "cold"
    dirs.append(mapped.parent)
    restored, res = pitr(arch, "--latest", "--tablespace-mapping", f"{location}={mapped}")
    restores.append(restored)
    try:
        assert restored.psql(CONTENT.format(table="t")) == expected
        assert restored.psql(
            "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'cold'"
        ) == str(mapped)
    finally:
        restored.stop()

    # the drill restores the tablespace into its scratch directory, not `location`
    before = sorted(p.name for p in location.rglob("*"))
    res = arch.seawall(
        "drill",
        "--json",
        DB_NAME="postgres",
        DRILL_SMOKE_QUERY="SELECT count(*) FROM t",
        DRILL_SMOKE_MIN="3500",
        PRUNE_AFTER_BACKUP="false",
    )
    assert res.returncode == 0, res.stderr + res.stdout
    (target,) = json.loads(res.stdout)["targets"]
    assert (target["method"], target["verdict"]) == ("pitr", "passed"), target
    smoke = next(c for c in target["checks"] if c["name"] == "smoke query")
    assert smoke["detail"].endswith("returned 3500"), smoke
    assert sorted(p.name for p in location.rglob("*")) == before
    assert pg.psql("SELECT count(*) FROM t") == "3500"
    shutil.rmtree(mapped.parent, ignore_errors=True)
