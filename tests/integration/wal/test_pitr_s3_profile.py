"""PITR from S3 when the operator's credentials come from a profile (``AWS_PROFILE``
and ``~/.aws/credentials``), not from AWS_ACCESS_KEY_ID/…

``pitr-restore`` runs restore_command's wal-fetch with an explicit environment
(``env -i``, HOME = the recovery's sidecar, as the postgres user): it passed
``AWS_PROFILE`` on, but the profile lives in the operator's home, which that
wal-fetch neither sees nor may read. Every WAL fetch failed and the recovery
stopped. The profile's static keys are now resolved by pitr-restore and handed
over like any other secret (files 0600 beside the script).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.storage.conftest import new_bucket, s3_server
from tests.integration.storage.test_s3_full_cycle import (
    S3Archived,
    _clean,
    _secret_file,
    secrets_dir,
)
from tests.integration.wal.helpers import pitr
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

__all__ = ["s3_server", "secrets_dir"]  # fixtures used by name below


@pytest.fixture
def operator_home() -> Iterator[Path]:
    """The operator's home (root's, 0700) with the profile in ~/.aws/credentials."""
    path = Path(tempfile.mkdtemp(prefix="seawall-home-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class ProfileArchived(S3Archived):
    """The same archive, the commands run as the operator with a named profile."""

    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = _clean(super().env(**extra))
        env.update(
            HOME=str(self.home),
            AWS_PROFILE="dr",
            AWS_ENDPOINT_URL=self.server.endpoint,
            AWS_REGION="us-east-1",
        )
        return env


def test_pitr_from_s3_with_profile_credentials(
    pg_factory: Callable[..., PgCluster],
    s3_server: S3Server,
    age_keys: tuple[Path, str],
    secrets_dir: Path,
    operator_home: Path,
    restores: list[Any],
) -> None:
    key, public = age_keys
    bucket = new_bucket(s3_server)
    repo = f"s3://{bucket}/p"
    aws = operator_home / ".aws"
    aws.mkdir(mode=0o700)
    (aws / "credentials").write_text(
        f"[dr]\naws_access_key_id = {s3_server.access_key}\n"
        f"aws_secret_access_key = {s3_server.secret_key}\n"
    )
    os.chmod(aws / "credentials", 0o600)
    ak = _secret_file(secrets_dir, "access-key", s3_server.access_key)
    sk = _secret_file(secrets_dir, "secret-key", s3_server.secret_key)
    from tests.conftest import SEAWALL

    command = (
        f"'env BACKUP_DIR={repo} PG_CLUSTER_NAME=main ENCRYPTION=true "
        f"ENCRYPTION_RECIPIENTS={public} AWS_ENDPOINT_URL={s3_server.endpoint} "
        f"AWS_ACCESS_KEY_ID_FILE={ak} AWS_SECRET_ACCESS_KEY_FILE={sk} "
        f"{SEAWALL} postgres wal-push %p'"
    )
    pg = pg_factory(
        extra_conf={"archive_mode": "on", "archive_command": command, "wal_keep_size": "0"}
    )
    arch = ProfileArchived(pg, repo, key, public)  # type: ignore[arg-type]
    arch.server = s3_server
    arch.home = operator_home
    pg.psql("CHECKPOINT")
    arch.switch_and_wait(timeout=60)
    arch.basebackup()
    pg.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 300)")
    arch.switch_and_wait(timeout=60)

    restored, _ = pitr(arch, "--latest")
    restores.append(restored)
    assert restored.psql("SELECT count(*) FROM t") == "300"
    sidecar = restored.base / ".data.seawall-recovery"
    text = (sidecar / "restore_command.sh").read_text()
    assert s3_server.secret_key not in text and "AWS_PROFILE" not in text
    secret = sidecar / "aws_secret_access_key"
    assert secret.read_text().strip() == s3_server.secret_key
    assert secret.stat().st_mode & 0o777 == 0o600
