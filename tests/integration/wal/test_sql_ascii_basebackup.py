"""A base backup of a SQL_ASCII cluster through the CLI (issue 11 item 4).

The base backup reads its server facts with psycopg from DB_NAME; in a
SQL_ASCII database psycopg returns text as bytes, which turned the
manifest's server version and system identifier into ``"b'…'"`` strings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seawall.catalog.models import Manifest
from tests.integration.wal.helpers import Archived, archive_command
from tests.support.pgcluster import PgCluster


def test_basebackup_of_a_sql_ascii_cluster(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    pg = pg_factory(
        encoding="SQL_ASCII",
        locale="C",
        extra_conf={
            "archive_mode": "on",
            "archive_command": archive_command(backup_dir, public),
            "wal_keep_size": "0",
        },
    )
    assert pg.psql("SHOW server_encoding") == "SQL_ASCII"
    arch = Archived(pg, backup_dir, key, public)
    pg.psql("CHECKPOINT")
    arch.switch_and_wait()
    m = Manifest.model_validate(arch.basebackup())
    info = m.postgres
    assert m.ok and info is not None
    assert info.server_version == pg.psql("SHOW server_version")
    assert info.system_identifier == pg.psql("SELECT system_identifier FROM pg_control_system()")
    assert m.verification is not None and m.verification.ok
