"""Base backups and PITR of a cluster with tablespaces (ADR 0019).

Each tablespace is its own artifact of the base backup; ``pitr-restore``
puts it back at its original location or where ``--tablespace-mapping``
says, refusing a target that is not empty before writing anything.
Everything here runs real PostgreSQL 15 clusters archiving through seawall.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.integration.wal.helpers import Archived, Restored, make_archived, now_utc, pitr
from tests.support.pgcluster import PgCluster

CONTENT = "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY i)) FROM {table} t"


def _dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="seawall-ts-", dir="/tmp"))
    os.chmod(path, 0o700)
    shutil.chown(path, "postgres", "postgres")
    return path


def _parent() -> Path:
    """A new directory the postgres user may traverse (its child is created by restore)."""
    path = Path(tempfile.mkdtemp(prefix="seawall-ts-new-", dir="/tmp"))
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def dirs() -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def arch(
    request: pytest.FixtureRequest,
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    dirs: list[Path],
) -> Iterator[Archived]:
    """A cluster with tablespace "Cold data": a table and an index in it
    (PostgreSQL 15 unless the test asks for another major version)."""
    arch = make_archived(pg_factory, backup_dir, age_keys, version=getattr(request, "param", 15))
    location = _dir()
    dirs.append(location)
    arch.pg.psql(f"CREATE TABLESPACE \"Cold data\" LOCATION '{location}'")
    arch.pg.psql(
        'CREATE TABLE cold (i int PRIMARY KEY USING INDEX TABLESPACE "Cold data", v text) '
        'TABLESPACE "Cold data"; '
        "INSERT INTO cold SELECT g, md5(g::text) FROM generate_series(1, 5000) g; "
        "CREATE TABLE warm AS SELECT g AS i FROM generate_series(1, 100) g"
    )
    yield arch
    for base in arch.restores:
        Restored(base, base / "data", 0, arch.pg.bin_dir).destroy()


def _location(arch: Archived) -> str:
    return arch.pg.psql(
        "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'Cold data'"
    )


@pytest.mark.parametrize("arch", [15, 18], indirect=True)
def test_pitr_restores_a_tablespace_to_a_mapped_location(arch: Archived, dirs: list[Path]) -> None:
    location = _location(arch)
    data = arch.basebackup()
    spaces = data["postgres"]["tablespaces"]  # type: ignore[index]
    oid = int(arch.pg.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'Cold data'"))
    assert [(t["oid"], t["name"], t["location"]) for t in spaces] == [(oid, "Cold data", location)]
    arts = {a["role"]: a for a in data["artifacts"]}  # type: ignore[attr-defined]
    assert arts["tablespace"]["name"] == f"tablespace-{oid}.tar.zst.age"
    assert arts["tablespace"]["sha256"] and arts["base"]["name"] == "base.tar.zst.age"
    assert data["format_version"] == 3
    assert data["verification"]["ok"], data["verification"]  # type: ignore[index]

    # more writes after the backup, in the tablespace and outside it
    arch.pg.psql(
        "INSERT INTO cold SELECT g, 'after' FROM generate_series(5001, 7000) g; "
        "UPDATE cold SET v = 'changed' WHERE i % 7 = 0; DELETE FROM cold WHERE i % 11 = 0; "
        "INSERT INTO warm SELECT g FROM generate_series(101, 150) g"
    )
    expected = arch.pg.psql(CONTENT.format(table="cold"))
    expected_warm = arch.pg.psql(CONTENT.format(table="warm"))
    target = now_utc(arch.pg)
    arch.pg.psql("INSERT INTO cold VALUES (99999, 'after the target')")
    arch.switch_and_wait()

    mapped = _parent() / "cold"
    dirs.append(mapped.parent)
    restored, res = pitr(
        arch, "--target-time", target, "--tablespace-mapping", f"{location}={mapped}"
    )
    try:
        assert json.loads(res.stdout)["state"] == "promoted"
        assert restored.psql(CONTENT.format(table="cold")) == expected
        assert restored.psql(CONTENT.format(table="warm")) == expected_warm
        assert restored.psql(
            "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'Cold data'"
        ) == str(mapped)
        link = restored.data_dir / "pg_tblspc" / str(oid)
        assert link.is_symlink() and Path(os.readlink(link)) == mapped
        assert any(mapped.glob("PG_*_*/*/*")), "the tablespace's files are at the mapping"
        # the index in the tablespace works on the restored server
        assert restored.psql("SET enable_seqscan = off; SELECT v FROM cold WHERE i = 6000") == (
            "after"
        )
    finally:
        restored.stop()
    # the source's tablespace was never touched: it still serves the source
    assert arch.pg.psql("SELECT count(*) FROM cold WHERE i = 99999") == "1"


def test_restore_refuses_a_non_empty_tablespace_target_and_verify_checks_the_artifact(
    arch: Archived, dirs: list[Path]
) -> None:
    location = _location(arch)
    m = arch.basebackup()
    oid = m["postgres"]["tablespaces"][0]["oid"]  # type: ignore[index]

    # no mapping: the original location is the live source's tablespace
    restored, res = pitr(arch, "--latest", expect_ok=False)
    assert res.returncode == 9, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert "'Cold data'" in line and f"--tablespace-mapping {location}=" in line, line
    assert not restored.data_dir.exists(), "nothing written before the refusal"

    # a mapping to a directory that holds a file
    busy = _parent()
    dirs.append(busy)
    (busy / "keep.txt").write_text("not ours")
    restored, res = pitr(
        arch, "--latest", "--tablespace-mapping", f"{location}={busy}", expect_ok=False
    )
    assert res.returncode == 9, res.stderr
    assert f"{busy}, which is not empty" in res.stderr
    assert not restored.data_dir.exists()
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]

    # a dry run names where each tablespace would go
    dry = arch.seawall(
        "postgres", "pitr-restore", "--latest", "--dry-run", "--json",
        "--data-dir", str(busy / "data"), "--tablespace-mapping", f"{location}={busy}/new",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["tablespaces"] == [
        {"name": "Cold data", "oid": oid, "from": location, "to": f"{busy}/new"}
    ]
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]

    # a mapping naming no tablespace of the backup (a typo): exit 2
    restored, res = pitr(
        arch, "--latest", "--tablespace-mapping", f"/no/such/place={busy}/x", expect_ok=False
    )
    assert res.returncode == 2, res.stderr
    assert "/no/such/place" in res.stderr and location in res.stderr

    # verify --deep unpacks the tablespace too: pg_verifybackup checks its files
    deep = arch.seawall("postgres", "verify", str(m["id"]), "--deep", "--json")
    assert deep.returncode == 0, deep.stderr
    checks = json.loads(deep.stdout)
    text = json.dumps(checks)
    assert f"tablespace {oid}" in text and "pg_verifybackup" in text, text

    # one flipped byte in the tablespace artifact: verify refuses the backup
    art = next(arch.backup_dir.rglob(f"{m['id']}/tablespace-{oid}.tar*"))
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0x01
    art.write_bytes(bytes(data))
    bad = arch.seawall("postgres", "verify", str(m["id"]))
    assert bad.returncode == 3, bad.stderr
    assert "sha256" in bad.stderr, bad.stderr


def test_pitr_restores_a_tablespace_to_its_original_location(
    arch: Archived, dirs: list[Path]
) -> None:
    """The source host is lost: its tablespace directory is back, empty, and
    the restore (no mapping) puts the tablespace where it was."""
    location = Path(_location(arch))
    arch.basebackup()
    arch.pg.psql("INSERT INTO cold SELECT g, 'late' FROM generate_series(5001, 5500) g")
    arch.switch_and_wait()
    expected = arch.pg.psql(CONTENT.format(table="cold"))
    arch.pg.stop()
    moved = location.with_name(location.name + "-lost")
    location.rename(moved)
    dirs.append(moved)
    location.mkdir(mode=0o700)
    shutil.chown(location, "postgres", "postgres")

    restored, _ = pitr(arch, "--latest")
    try:
        assert restored.psql(CONTENT.format(table="cold")) == expected
        assert restored.psql(
            "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'Cold data'"
        ) == str(location)
        assert location.stat().st_mode & 0o777 == 0o700
    finally:
        restored.stop()


def test_a_corrupt_tablespace_artifact_fails_the_restore_and_leaves_nothing(
    arch: Archived, dirs: list[Path]
) -> None:
    location = _location(arch)
    m = arch.basebackup()
    oid = m["postgres"]["tablespaces"][0]["oid"]  # type: ignore[index]
    art = next(arch.backup_dir.rglob(f"{m['id']}/tablespace-{oid}.tar*"))
    data = bytearray(art.read_bytes())
    data[len(data) // 3] ^= 0x40
    art.write_bytes(bytes(data))
    mapped = _parent() / "cold"
    dirs.append(mapped.parent)
    restored, res = pitr(
        arch, "--latest", "--tablespace-mapping", f"{location}={mapped}", expect_ok=False
    )
    assert res.returncode == 3, res.stderr  # the sha256 check, before tar saw a byte
    assert "sha256" in res.stderr, res.stderr
    assert not restored.data_dir.exists() and not mapped.exists()


def test_a_backup_whose_connection_is_killed_mid_stream_fails_and_leaves_no_artifact(
    arch: Archived,
) -> None:
    """The walsender terminated while it streams: the run is recorded as
    failed and no artifact of it stays in the repository."""
    arch.pg.psql(
        "INSERT INTO cold SELECT g, repeat(md5(g::text), 8) FROM generate_series(5001, 400000) g"
    )
    proc = subprocess.Popen(
        [SEAWALL, "postgres", "basebackup", "--wal-wait", "5"],
        env=arch.env(COMPRESSION_LEVEL="19"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    killed = ""
    while time.monotonic() < deadline and proc.poll() is None:
        killed = arch.pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_progress_basebackup "
            "WHERE phase = 'streaming database files' AND backup_streamed > 0"
        )
        if killed:
            break
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    assert killed == "t", "the backup ended before it could be interrupted"
    assert proc.returncode != 0, out
    line = err.strip().splitlines()[-1]
    assert "base backup of main failed: postgresql: BASE_BACKUP failed" in line, err
    runs = list((arch.backup_dir / "postgresql" / "base" / "main").glob("*"))
    assert len(runs) == 1
    assert json.loads((runs[0] / "manifest.json").read_text())["status"] == "failed"
    assert sorted(p.name for p in runs[0].iterdir()) == ["manifest.json"]


def test_a_full_repository_mid_stream_fails_the_backup_in_one_line_without_hanging(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    dirs: list[Path],
) -> None:
    """ENOSPC while a tablespace streams: the reader thread still waiting on
    the server is stopped before the connection closes; the run is recorded
    as failed, nothing of it stays, and the server's backup ends."""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0777", "tmpfs", str(backup_dir)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        arch = make_archived(pg_factory, backup_dir, age_keys)
        location = _dir()
        dirs.append(location)
        arch.pg.psql(f"CREATE TABLESPACE big LOCATION '{location}'")
        arch.pg.psql(
            "CREATE TABLE big (v text) TABLESPACE big; INSERT INTO big "
            "SELECT md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 300000) g"
        )
        res = subprocess.run(
            [SEAWALL, "postgres", "basebackup", "--wal-wait", "5"],
            env=arch.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode != 0, res.stdout
        lines = res.stderr.strip().splitlines()
        assert "base backup of main failed" in lines[-1], res.stderr
        assert "backup volume full while writing" in lines[-1] and "tablespace-" in lines[-1], (
            lines[-1]
        )
        (run,) = (backup_dir / "postgresql" / "base" / "main").glob("*")
        assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
        assert [p.name for p in run.iterdir()] == ["manifest.json"]
        assert arch.pg.psql("SELECT count(*) FROM pg_stat_progress_basebackup") == "0"
    finally:
        subprocess.run(["umount", "-l", str(backup_dir)], check=False)
