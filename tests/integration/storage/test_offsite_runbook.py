"""docs/runbooks/restore-from-off-site.md, followed step by step: the cluster and its
backup volume are gone, only the S3 mirror and the age identity are left.

The commands are the runbook's (``s5cmd sync`` of the mirror to a fresh
volume, then ``seawall postgres list`` / ``verify`` / ``restore`` with
``BACKUP_DIR`` on it); the databases are compared with what was backed up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import VENV_BIN, run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, db_state, seawall_env
from tests.integration.storage.test_mirrors_s3 import s3_env
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server


def test_restore_from_the_off_site_copy_when_cluster_and_volume_are_gone(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    tmp_path: Path,
    age_keys: tuple[Path, str],
    s3_server: S3Server,
    bucket_factory: Callable[[S3Server], str],
) -> None:
    key, public = age_keys
    bucket = bucket_factory(s3_server)
    mirror = f"s3://{bucket}/prod"
    old = pg_factory(version=15)
    old.psql("CREATE DATABASE shop")
    old.psql(SMALL_SQL, "shop")
    old.psql(
        "CREATE ROLE shop_app LOGIN PASSWORD 'app-pw-1'; GRANT SELECT ON items TO shop_app", "shop"
    )
    expected = db_state(old, "shop")
    crypt = {"ENCRYPTION": "true", "ENCRYPTION_RECIPIENTS": public}
    env = seawall_env(old, backup_dir, MIRRORS=mirror, **crypt, **s3_env(s3_server))
    res = run_seawall(["postgres", "backup", "--database", "shop"], env)
    assert res.returncode == 0, res.stderr

    # the disaster: the cluster and the backup volume are gone
    old.destroy()
    shutil.rmtree(backup_dir)

    # runbook step 2: copy the off-site copy to a fresh volume
    volume = tmp_path / "restore-volume"
    volume.mkdir(mode=0o700)
    aws = s3_env(s3_server)
    sync = subprocess.run(
        [
            str(VENV_BIN / "s5cmd"),
            "--endpoint-url",
            aws["AWS_ENDPOINT_URL"],
            "sync",
            f"{mirror}/*",
            f"{volume}/",
        ],
        env={"PATH": "/usr/bin:/bin", **aws},
        capture_output=True,
        text=True,
    )
    assert sync.returncode == 0, sync.stderr

    # runbook steps 3-5 against the new, empty server
    new = pg_factory(version=15)
    renv = seawall_env(new, volume, ENCRYPTION_IDENTITY_FILE=str(key))
    listing = run_seawall(["postgres", "list", "--json"], renv)
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert [r["database"] for r in rows if r["status"] == "success"] == ["shop"]
    res = run_seawall(["postgres", "verify", "latest", "--database", "shop", "--deep"], renv)
    assert res.returncode == 0, res.stderr
    res = run_seawall(
        [
            "postgres",
            "restore",
            "latest",
            "--database",
            "shop",
            "--target-db",
            "shop",
            "--with-globals",
        ],
        renv,
    )
    assert res.returncode == 0, res.stderr
    got = db_state(new, "shop")
    assert got["contents"] == expected["contents"]
    assert new.psql("SELECT rolname FROM pg_roles WHERE rolname = 'shop_app'") == "shop_app"
