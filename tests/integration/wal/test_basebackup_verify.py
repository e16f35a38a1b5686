"""Base backups: manifest facts, pg_verifybackup on the unpacked backup with
its WAL from the archive, and a corrupted backup failing verification."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seawall.catalog.models import Manifest
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.postgres.physical.verify import verify_base_backup
from seawall.settings import load_settings
from tests.integration.wal.helpers import Archived, make_archived
from tests.support.pgcluster import PgCluster


@pytest.fixture
def arch(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> Iterator[Archived]:
    yield make_archived(pg_factory, backup_dir, age_keys)


def _context(arch: Archived, monkeypatch: pytest.MonkeyPatch) -> Context:
    for k in list(os.environ):
        if k.startswith(("PG", "DB_", "SEAWALL_", "ENCRYPTION", "BACKUP_DIR")):
            monkeypatch.delenv(k)
    for k, v in arch.env().items():
        if k.startswith(("PG", "BACKUP_DIR", "ENCRYPTION", "PG_CLUSTER")):
            monkeypatch.setenv(k, v)
    return Context(load_settings())


def test_basebackup_manifest_and_deep_verify(
    arch: Archived, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch.pg.psql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
    data = arch.basebackup()
    m = Manifest.model_validate(data)
    pg = m.postgres
    assert m.kind == "base" and m.series == "main" and m.ok
    assert pg is not None and pg.timeline == 1 and pg.wal_segment_size == 16 * 1024 * 1024
    sysid = arch.pg.psql("SELECT system_identifier FROM pg_control_system()")
    assert pg.system_identifier == sysid
    assert pg.start_wal and pg.stop_wal and pg.start_lsn and pg.stop_lsn
    assert pg.server_version_num and pg.server_version_num // 10000 == 15
    assert m.verification is not None and m.verification.ok
    art = m.artifact("base")
    assert art is not None and art.name == "base.tar.zst.age" and art.encryption is not None

    ctx = _context(arch, monkeypatch)
    deep = verify_base_backup(ctx, m, deep=True)
    assert deep.ok, deep.message
    assert any("pg_verifybackup" in c for c in deep.checks)

    # the stock tools read it too: age -d | zstd -d | tar t
    key = ctx.storage.path(artifact_key(m, art.name))
    listing = subprocess.run(
        f"age -d -i {arch.key_file} {key} | zstd -dc | tar t",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "backup_label" in listing and "backup_manifest" in listing

    # WAL the backup needs is gone: deep verify fails and names it
    (seg,) = (arch.backup_dir / "postgresql" / "wal").rglob(f"{pg.start_wal}-*")
    saved = seg.read_bytes()
    seg.unlink()
    missing = verify_base_backup(ctx, m, deep=True)
    assert not missing.ok and pg.start_wal in missing.message
    seg.write_bytes(saved)

    # one flipped byte in the stored backup: verification fails
    raw = bytearray(key.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    key.write_bytes(bytes(raw))
    shallow = verify_base_backup(ctx, m, deep=False)
    assert not shallow.ok and "sha256" in shallow.message


def test_tampered_content_with_matching_checksum_fails_pg_verifybackup(
    arch: Archived, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A backup re-packed with one data file changed (and the manifest's sha256
    updated to match, as an attacker or a buggy tool would) still fails:
    pg_verifybackup checks every file against backup_manifest."""
    arch.pg.psql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
    m = Manifest.model_validate(arch.basebackup())
    ctx = _context(arch, monkeypatch)
    art = m.artifact("base")
    assert art is not None
    key = ctx.storage.path(artifact_key(m, art.name))
    work = tmp_path / "x"
    work.mkdir()
    subprocess.run(
        f"age -d -i {arch.key_file} {key} | zstd -dc | tar x -C {work}", shell=True, check=True
    )
    target = work / "PG_VERSION"
    target.write_text("99\n")
    subprocess.run(
        f"tar c -C {work} . | zstd -q | age -r {arch.public_key} > {key}", shell=True, check=True
    )
    import hashlib

    art.sha256 = hashlib.sha256(key.read_bytes()).hexdigest()
    art.stored_size = key.stat().st_size  # the attacker fixes the size too
    art.raw_sha256 = None
    result = verify_base_backup(ctx, m, deep=True)
    assert not result.ok
    assert "pg_verifybackup" in result.message and "PG_VERSION" in result.message


def test_cli_verify_base_backup_deep_and_corrupt(arch: Archived) -> None:
    """`seawall postgres verify <base id> --deep` records the result; a flipped byte fails."""
    import subprocess

    from tests.conftest import SEAWALL

    arch.pg.psql("CREATE TABLE t2 AS SELECT generate_series(1, 100) AS i")
    m = Manifest.model_validate(arch.basebackup())
    env = arch.env()
    ok = subprocess.run(
        [SEAWALL, "postgres", "verify", "latest", "--base", "--deep"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "pg_verifybackup" in ok.stdout
    stored = Manifest.model_validate_json(
        next(arch.backup_dir.rglob(f"{m.id}/manifest.json")).read_text()
    )
    assert stored.verification is not None and stored.verification.deep and stored.verification.ok
    art = next(arch.backup_dir.rglob(f"{m.id}/base.tar*"))
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0x01
    art.write_bytes(bytes(data))
    bad = subprocess.run(
        [SEAWALL, "postgres", "verify", m.id], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 3, bad.stderr
    assert "sha256" in bad.stderr
