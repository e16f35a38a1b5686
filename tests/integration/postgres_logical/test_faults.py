"""Clear failures with the documented exit codes: corruption (3), missing
files (4), server down or wrong password (5), wrong key (8), disk full (7),
invalid configuration (2). Earlier backups are never touched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import (
    SMALL_SQL,
    backup_folder,
    manifests,
    seawall_env,
)
from tests.support.pgcluster import PASSWORD, PgCluster


@pytest.fixture
def items(pg: PgCluster) -> PgCluster:
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    return pg


def _crypt(key: Path, public: str) -> dict[str, str]:
    return {
        "ENCRYPTION": "true",
        "ENCRYPTION_RECIPIENTS": public,
        "ENCRYPTION_IDENTITY_FILE": str(key),
    }


def _digest_tree(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_flipped_byte_anywhere_fails_verify(
    items: PgCluster, backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    env = seawall_env(items, backup_dir, **_crypt(*age_keys))
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    [m] = manifests(backup_dir, "items")
    folder = backup_folder(backup_dir, "items", m["id"])
    for art in m["artifacts"]:
        path = folder / art["name"]
        original = path.read_bytes()
        for offset in (0, len(original) // 2, len(original) - 1):
            damaged = bytearray(original)
            damaged[offset] ^= 0x01
            path.write_bytes(bytes(damaged))
            res = run_seawall(["postgres", "verify", m["id"]], env)
            assert res.returncode == 3, (art["name"], offset, res.stderr)
            assert "sha256 mismatch" in res.stderr and art["name"] in res.stderr
            recorded = json.loads((folder / "manifest.json").read_text())["verification"]
            assert recorded["ok"] is False
        path.write_bytes(original)
    res = run_seawall(["postgres", "verify", m["id"]], env)
    assert res.returncode == 0, res.stderr


def test_flipped_byte_in_foreign_files_is_caught_by_the_formats(
    items: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], tmp_path: Path
) -> None:
    """Without a manifest there is no sha256: zstd's checksum and age's MAC catch it."""
    key, public = age_keys
    dump = tmp_path / "x.pgdump.zst"
    subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{items.bin_dir}/pg_dump -Fc -Z0 -d items | zstd -q > {dump}"],
        env=items.env(), check=True,
    )  # fmt: skip
    enc = tmp_path / "x.pgdump.zst.age"
    subprocess.run(["age", "-r", public, "-o", str(enc), str(dump)], check=True)
    env = seawall_env(items, backup_dir, ENCRYPTION_IDENTITY_FILE=str(key))
    for path in (dump, enc):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))
        res = run_seawall(["postgres", "verify", str(path)], env)
        assert res.returncode == 3, (path.name, res.stderr)
        assert "corrupt" in res.stderr


def test_wrong_key_and_missing_file(
    items: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = age_keys
    env = seawall_env(items, backup_dir, **_crypt(key, public))
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    other = tmp_path / "other.key"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    wrong = seawall_env(items, backup_dir, ENCRYPTION_IDENTITY_FILE=str(other))
    res = run_seawall(["postgres", "verify", "latest"], wrong)
    assert res.returncode == 8, res.stderr
    assert "none of the configured identities" in res.stderr
    res = run_seawall(["postgres", "restore", "latest", "--target-db", "nope"], wrong)
    assert res.returncode == 8
    assert items.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'nope%'") == "0"

    pw = seawall_env(items, backup_dir, ENCRYPTION="true", ENCRYPTION_KEY="first passphrase")
    assert run_seawall(["postgres", "backup", "-d", "items"], pw).returncode == 0
    [_, newest] = manifests(backup_dir, "items")
    res = run_seawall(
        ["postgres", "verify", newest["id"]],
        seawall_env(items, backup_dir, ENCRYPTION_KEY="second passphrase"),
    )
    assert res.returncode == 8 and "wrong passphrase" in res.stderr

    (backup_folder(backup_dir, "items", newest["id"]) / "dump.pgdump.zst.age").unlink()
    res = run_seawall(["postgres", "verify", newest["id"]], pw)
    assert res.returncode == 4, res.stderr
    assert "missing" in res.stderr
    res = run_seawall(["postgres", "verify", str(tmp_path / "no-such-dump.sql.gz")], pw)
    assert res.returncode == 4 and "no such file" in res.stderr
    res = run_seawall(["postgres", "verify", "20990101T000000Z-abcd"], pw)
    assert res.returncode == 4


def test_server_down_or_wrong_password(items: PgCluster, backup_dir: Path) -> None:
    env = seawall_env(items, backup_dir)
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    [first] = manifests(backup_dir, "items")
    folder = backup_folder(backup_dir, "items", first["id"])
    before = _digest_tree(folder)

    wrong_pw = "Wr0ng-pw-xyz"
    res = run_seawall(["postgres", "backup", "-d", "items"], {**env, "PGPASSWORD": wrong_pw})
    assert res.returncode == 5, res.stderr
    assert "password authentication failed" in res.stderr
    assert wrong_pw not in res.stdout + res.stderr

    items.stop()
    res = run_seawall(["postgres", "backup", "-d", "items"], env)
    assert res.returncode == 5, res.stderr
    assert "check DB_HOST" in res.stderr

    all_m = manifests(backup_dir, "items")
    failed = [m for m in all_m if m["status"] == "failed"]
    assert len(failed) == 2 and all(
        m["error"] and m["duration_seconds"] is not None for m in failed
    )
    assert all(m["artifacts"] == [] for m in failed)
    assert all(PASSWORD not in json.dumps(m) and wrong_pw not in json.dumps(m) for m in all_m)
    assert _digest_tree(folder) == before
    for m in failed:
        assert sorted(p.name for p in backup_folder(backup_dir, "items", m["id"]).iterdir()) == [
            "manifest.json"
        ]
    res = run_seawall(["postgres", "list", "--json"], env)
    assert [r["status"] for r in json.loads(res.stdout)].count("success") == 1


@pytest.fixture
def small_volume() -> Iterator[Path]:
    mnt = Path(tempfile.mkdtemp(prefix="seawall-full-", dir="/tmp"))
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0777", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)
    mnt.rmdir()


def test_disk_full_mid_backup(pg: PgCluster, small_volume: Path) -> None:
    pg.psql("CREATE DATABASE big")
    pg.psql(
        "CREATE TABLE noise AS SELECT g, md5(g::text) || md5((g * 7)::text) AS a FROM generate_series(1, 100000) g",
        "big",
    )
    env = seawall_env(pg, small_volume, COMPRESSION="none")
    res = run_seawall(["postgres", "backup", "-d", "big"], env)
    assert res.returncode == 7, res.stderr
    assert "volume full" in res.stderr
    files = [p for p in small_volume.rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert all(p.name == "manifest.json" for p in files), files
    for p in files:
        assert json.loads(p.read_text())["status"] == "failed"


def test_invalid_configuration_lists_bad_fields(pg: PgCluster, backup_dir: Path) -> None:
    env = seawall_env(
        pg, backup_dir, COMPRESSION="brotli", DB_PORT="not-a-port", DB_PASSWORD=PASSWORD
    )
    res = run_seawall(["postgres", "backup"], env)
    assert res.returncode == 2
    assert "COMPRESSION" in res.stderr and "DB_PORT" in res.stderr
    res = run_seawall(["postgres", "backup"], {**seawall_env(pg, backup_dir), "ENCRYPTION": "true"})
    assert res.returncode == 2 and "ENCRYPTION" in res.stderr


def test_deep_verify_compares_statistics(items: PgCluster, backup_dir: Path) -> None:
    """A restore that does not reproduce the recorded statistics fails (exit 3),
    and the scratch database is gone afterwards."""
    env = seawall_env(items, backup_dir)
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    [m] = manifests(backup_dir, "items")
    path = backup_folder(backup_dir, "items", m["id"]) / "manifest.json"
    assert run_seawall(["postgres", "verify", m["id"], "--deep"], env).returncode == 0
    for field, value in (("rows", 2999), ("checksum", "12345")):
        doctored = json.loads(path.read_text())
        doctored["postgres"]["stats"]["tables"]["public.items"][field] = value
        doctored["verification"] = None
        path.write_text(json.dumps(doctored))
        res = run_seawall(["postgres", "verify", m["id"], "--deep"], env)
        assert res.returncode == 3, res.stderr
        assert "restored data differs" in res.stderr and "public.items" in res.stderr
        assert json.loads(path.read_text())["verification"]["ok"] is False
    assert items.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'seawall_%'") == "0"


def test_large_table_of_contents_verifies(pg: PgCluster, backup_dir: Path) -> None:
    """pg_restore --list output far beyond a pipe buffer (1500 tables, ~230 kB)
    while the archive is still being fed to it: no deadlock."""
    pg.psql("CREATE DATABASE many")
    pg.psql(
        "SELECT format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', g)"
        " FROM generate_series(1, 1500) g \\gexec",
        "many",
    )
    env = seawall_env(pg, backup_dir)
    res = run_seawall(["postgres", "backup", "-d", "many"], env, timeout=120)
    assert res.returncode == 0, res.stderr
    res = run_seawall(["postgres", "verify", "latest", "-d", "many"], env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "pg_restore --list ok" in res.stdout


def _recording_bin_dir(cluster: PgCluster, tmp_path: Path) -> tuple[Path, Path]:
    """PG_BIN_DIR whose pg_restore logs each start, then runs the real one."""
    bindir, log = tmp_path / "bin", tmp_path / "starts.log"
    bindir.mkdir()
    for tool in sorted(p.name for p in cluster.bin_dir.iterdir()):
        if tool == "pg_restore":
            (bindir / tool).write_text(
                f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nexec "{cluster.bin_dir / tool}" "$@"\n'
            )
            (bindir / tool).chmod(0o755)
        else:
            (bindir / tool).symlink_to(cluster.bin_dir / tool)
    return bindir, log


@pytest.mark.parametrize("tamper", ["byte-near-the-end", "swapped-for-valid"])
def test_tampered_dump_never_reaches_pg_restore(
    items: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], tmp_path: Path, tamper: str
) -> None:
    """Design invariant 4 at its sink: a dump whose stored bytes do not match
    the manifest never starts pg_restore (nor psql for the globals) and
    creates no database. "swapped-for-valid" puts another backup's intact
    dump in its place: it decodes cleanly, only the sha256 stops it."""
    bindir, log = _recording_bin_dir(items, tmp_path)
    env = seawall_env(items, backup_dir, PG_BIN_DIR=str(bindir), **_crypt(*age_keys))
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    items.psql(
        "INSERT INTO items (name) SELECT 'later ' || g FROM generate_series(1, 100) g", "items"
    )
    assert run_seawall(["postgres", "backup", "-d", "items"], env).returncode == 0
    first, second = manifests(backup_dir, "items")
    name = next(a["name"] for a in first["artifacts"] if a["role"] == "dump")
    victim = backup_folder(backup_dir, "items", first["id"]) / name
    if tamper == "swapped-for-valid":
        victim.write_bytes((backup_folder(backup_dir, "items", second["id"]) / name).read_bytes())
    else:
        data = bytearray(victim.read_bytes())
        data[-20] ^= 0x01
        victim.write_bytes(bytes(data))
    log.unlink(missing_ok=True)
    res = run_seawall(["postgres", "restore", first["id"], "--target-db", "copy"], env)
    assert res.returncode == 3, res.stderr
    assert name in res.stderr  # named as corrupt (sha256 or size), before any decoding
    started = log.read_text().splitlines() if log.exists() else []
    assert not [s for s in started if s.startswith("pg_restore")], started
    assert items.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '%copy%'") == "0"
    # the control: the recording wrapper does see an intact restore
    ok = run_seawall(["postgres", "restore", second["id"], "--target-db", "intact"], env)
    assert ok.returncode == 0, ok.stderr
    assert any(s.startswith("pg_restore") for s in log.read_text().splitlines())
