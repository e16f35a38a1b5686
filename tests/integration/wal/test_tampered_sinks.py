"""WAL and base backups: bytes that do not match reach no sink (invariant 4).

* ``pitr-restore`` of a base backup whose stored bytes differ from the
  manifest gives ``tar`` nothing to unpack: a ``tar`` first on PATH counts
  the bytes it is handed (then runs the real one), and the data directory
  is not left behind;
* ``wal-fetch`` of an archived file swapped for another *valid* archived
  segment (it decodes cleanly, to the wrong content) writes nothing at %p.

Checked against the bug they guard (issue 18): with the pre-decode sha256
check off, ``tar`` receives most of the base backup.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.postgres.wal.readahead import SPOOL
from tests.integration.wal.helpers import make_archived
from tests.support.pgcluster import PgCluster


def _counting_tar(tmp_path: Path) -> tuple[Path, Path]:
    bindir, counts = tmp_path / "bin", tmp_path / "tar-bytes"
    bindir.mkdir()
    counts.mkdir()
    real = shutil.which("tar")
    assert real is not None
    (bindir / "tar").write_text(
        f'#!/bin/sh\ninput="{counts}/$$"\ncat > "$input"\nexec "{real}" "$@" < "$input"\n'
    )
    (bindir / "tar").chmod(0o755)
    return bindir, counts


@pytest.mark.parametrize("tamper", ["byte-near-the-end", "swapped-for-valid"])
def test_tampered_base_backup_gives_tar_nothing(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
    tamper: str,
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g")
    first = arch.basebackup()
    second = arch.basebackup()  # --latest restores this one
    base = backup_dir / "postgresql/base/main"
    (art,) = (base / str(second["id"])).glob("base.tar*")
    original = art.read_bytes()
    if tamper == "swapped-for-valid":
        art.write_bytes(next((base / str(first["id"])).glob("base.tar*")).read_bytes())
    else:
        data = bytearray(original)
        data[-20] ^= 0x01
        art.write_bytes(bytes(data))

    bindir, counts = _counting_tar(tmp_path)
    path = f"{bindir}:{os.environ['PATH']}"
    data_dir = tmp_path / "restored"
    res = arch.seawall(
        "postgres", "pitr-restore", "--data-dir", str(data_dir), "--latest", PATH=path
    )
    assert res.returncode == 3, res.stderr
    assert art.name in res.stderr  # named as corrupt (sha256 or size), before any decoding
    given = {p.name: p.stat().st_size for p in counts.iterdir()}
    assert all(size == 0 for size in given.values()), f"tar was handed {given} bytes"
    assert not data_dir.exists() or not any(data_dir.iterdir())

    # the control: the counting tar does see an intact base backup
    art.write_bytes(original)
    ok = arch.seawall(
        "postgres", "pitr-restore", "--data-dir", str(tmp_path / "ok"), "--latest", PATH=path
    )
    assert ok.returncode == 0, ok.stderr
    assert any(p.stat().st_size > 0 for p in counts.iterdir())
    assert (tmp_path / "ok" / "PG_VERSION").is_file()


def test_wal_fetch_of_a_swapped_archive_file_writes_nothing(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
    a = arch.switch_and_wait()
    arch.pg.psql("INSERT INTO t SELECT g FROM generate_series(1, 1000) g")
    b = arch.switch_and_wait()
    wal = backup_dir / "postgresql/wal/main"
    (stored_a,) = wal.rglob(f"{a}-*")
    (stored_b,) = wal.rglob(f"{b}-*")
    stored_a.write_bytes(stored_b.read_bytes())  # valid, decodes cleanly: to b's content
    dest = tmp_path / "pg_wal" / "RECOVERYXLOG"
    dest.parent.mkdir()
    res = arch.seawall("postgres", "wal-fetch", a, str(dest))
    assert res.returncode == 3, res.stderr  # docs/exit-codes.md: wal-fetch, corrupt
    assert "corrupt" in res.stderr
    left = [p for p in dest.parent.iterdir() if p.name != SPOOL]
    assert left == [], "wal-fetch left a file for PostgreSQL to replay"
    # the read-ahead's hidden spool (docs/wal-archiving.md) never holds the refused segment
    spool = dest.parent / SPOOL
    assert not (spool.is_dir() and any(p.name.startswith(a) for p in spool.iterdir()))
