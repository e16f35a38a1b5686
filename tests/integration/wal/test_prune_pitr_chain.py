"""Prune over a real PITR chain (PG15): three base backups, WAL between them.

With RETENTION_LAST=1, no day/week/month tiers and PITR_WINDOW=0, only the
newest base backup is kept; every WAL file older than its start segment is
dropped, everything from it on is kept, history files stay, and afterwards
the archive still restores the newest commit (--latest) exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from seawall.walcore.names import parse_wal_name
from tests.integration.wal.helpers import Restored, archive_files, make_archived, pitr
from tests.support.pgcluster import PgCluster

KEEP_ONE = {
    "RETENTION_LAST": "1",
    "RETENTION_DAYS": "0",
    "RETENTION_WEEKS": "0",
    "RETENTION_MONTHS": "0",
    "RETENTION_YEARS": "0",
    "PITR_WINDOW": "0s",
}


def _segnos(files: set[str]) -> set[int]:
    out = set()
    for rel in files:
        name = rel.rsplit("/", 1)[-1].split("-", 1)[0]
        if name == "archive.json":
            continue
        wal = parse_wal_name(name)
        if wal.kind == "segment" and wal.segno is not None:
            out.add(wal.segno)
    return out


def test_prune_keeps_exactly_the_wal_the_kept_base_backup_needs(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    restores: list[Restored],
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    pg.psql("CREATE TABLE t (batch int)")
    for batch in (1, 2):
        arch.basebackup()
        pg.psql(f"INSERT INTO t VALUES ({batch})")
        arch.switch_and_wait()
    newest = arch.basebackup()
    pg.psql("INSERT INTO t VALUES (3)")
    arch.switch_and_wait()
    before = _segnos(archive_files(backup_dir))

    res = arch.seawall("prune", "--json", **KEEP_ONE)
    assert res.returncode == 0, res.stdout + res.stderr
    after = _segnos(archive_files(backup_dir))
    info = newest["postgres"]
    assert isinstance(info, dict)
    start = parse_wal_name(str(info["start_wal"])).segno
    assert start is not None
    assert after == {n for n in before if n >= start}, (sorted(before), sorted(after), start)
    assert min(before) < start  # something was really dropped

    check = arch.seawall("postgres", "wal-check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    r, res = pitr(arch, "--latest")
    restores.append(r)
    assert json.loads(res.stdout)["base_backup"] == newest["id"]
    assert r.psql("SELECT batch FROM t ORDER BY batch").split() == ["1", "2", "3"]
