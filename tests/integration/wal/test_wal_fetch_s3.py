"""wal-fetch from ``BACKUP_DIR=s3://bucket/prefix`` on the lean path, and a recovery
driven by restore_command alone from what a real PG15 cluster archived into S3."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from seawall.ports import free_loopback_port
from tests.conftest import SEAWALL
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.integration.wal.helpers import wait_archived
from tests.integration.wal.s3helpers import (
    _env,
    _fetch,
    _keys,
    _push,
    _segment_in,
    private_dir,
)  # fmt: skip
from tests.integration.wal.test_wal_fast_imports import segment
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

__all__ = ["private_dir", "s3_server"]  # fixtures used by name below


def test_lean_fetch_from_s3(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """wal-fetch reads back what wal-push stored (encrypted and not); a name not
    archived is a quiet exit 1; a prefix holding no WAL archive at all is loud;
    a corrupted object never reaches %p."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    push_env = _env(s3_server, f"s3://{bucket}/f", public)
    fetch_env = dict(push_env, ENCRYPTION_IDENTITY_FILE=str(key))
    seg = segment(tmp_path, "000000010000000000000021")
    assert _push(seg, push_env).returncode == 0
    dest = tmp_path / "restored" / "RECOVERYXLOG"
    dest.parent.mkdir()
    res = _fetch(seg.name, dest, fetch_env)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == seg.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["RECOVERYXLOG"]

    plain_env = {k: v for k, v in push_env.items() if not k.startswith("ENCRYPTION")}
    seg2 = _segment_in(tmp_path / "plain", "000000010000000000000022")
    assert _push(seg2, plain_env).returncode == 0
    res = _fetch(seg2.name, tmp_path / "restored" / "p2", plain_env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "restored" / "p2").read_bytes() == seg2.read_bytes()

    missing = _fetch("000000010000000000000099", tmp_path / "restored" / "m", fetch_env)
    assert (missing.returncode, missing.stderr) == (1, "")
    history = _fetch("00000002.history", tmp_path / "restored" / "h", fetch_env)
    assert (history.returncode, history.stderr) == (1, "")

    elsewhere = dict(fetch_env, BACKUP_DIR=f"s3://{bucket}/not-the-archive")
    loud = _fetch(seg.name, tmp_path / "restored" / "x", elsewhere)
    assert loud.returncode not in (0, 1) and "no WAL archive" in loud.stderr, loud.stderr

    # one byte flipped in the stored object: refused, %p never created
    (stored,) = [k for k in _keys(s3_server, bucket) if seg.name in k]
    blob = bytearray(s3_server.client().get_object(Bucket=bucket, Key=stored)["Body"].read())
    blob[len(blob) // 2] ^= 0x01
    s3_server.client().put_object(Bucket=bucket, Key=stored, Body=bytes(blob))
    bad = _fetch(seg.name, tmp_path / "restored" / "bad", fetch_env)
    assert bad.returncode not in (0, 1), bad.stderr
    assert not (tmp_path / "restored" / "bad").exists()
    assert len(bad.stderr.strip().splitlines()) == 1


def test_lean_fetch_from_s3_imports(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """The S3 wal-fetch loads no boto3/botocore, pydantic, Typer or the general fetch."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}", public, ENCRYPTION_IDENTITY_FILE=str(key))
    seg = segment(tmp_path, "000000010000000000000031")
    assert _push(seg, env).returncode == 0
    probe = (
        "import json, sys\n"
        "from seawall.entry import main\n"
        "codes = [main(['postgres', 'wal-fetch', sys.argv[1], sys.argv[2]]),\n"
        "         main(['postgres', 'wal-fetch', '000000010000000000000099', sys.argv[2] + 'x'])]\n"
        "print(json.dumps({'codes': codes, 'modules': sorted(sys.modules)}))\n"
    )
    python = str(Path(SEAWALL).parent / "python")
    res = subprocess.run(
        [python, "-c", probe, seg.name, str(tmp_path / "dest")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["codes"] == [0, 1], res.stderr
    assert (tmp_path / "dest").read_bytes() == seg.read_bytes()
    heavy = ("boto3", "botocore", "pydantic", "typer", "seawall.settings", "http.client",
             "seawall.postgres.wal.fetch", "seawall.storage.s3.backend")  # fmt: skip
    assert [m for m in heavy if m in out["modules"]] == []


def test_recovery_from_s3_through_restore_command(
    s3_server: S3Server,
    pg_factory: Callable[..., PgCluster],
    age_keys: tuple[Path, str],
    private_dir: Path,
) -> None:
    """A real PG15 cluster archives into S3 (archive_command = wal-push, including the
    base backup's .backup file); a base backup taken by hand recovers from S3 through
    restore_command = wal-fetch alone, up to the last archived transaction."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    secret = private_dir / "aws-secret"
    secret.write_text(s3_server.secret_key + "\n")
    identity = private_dir / "identity.txt"
    shutil.copyfile(key, identity)
    for f in (secret, identity):
        f.chmod(0o400)
        shutil.chown(f, "postgres", "postgres")
    common = (
        f"BACKUP_DIR=s3://{bucket}/pitr AWS_ENDPOINT_URL={s3_server.endpoint} "
        f"AWS_ACCESS_KEY_ID={s3_server.access_key} AWS_SECRET_ACCESS_KEY_FILE={secret}"
    )
    push = f"'env {common} ENCRYPTION=true ENCRYPTION_RECIPIENTS={public} {SEAWALL} postgres wal-push %p'"
    pg = pg_factory(
        version=15,
        extra_conf={"archive_mode": "on", "archive_command": push, "wal_keep_size": "0"},
    )
    pg.psql("CREATE TABLE t (x int)")
    pg.psql("INSERT INTO t SELECT generate_series(1, 1000)")
    wait_archived(pg, pg.psql("SELECT pg_walfile_name(pg_switch_wal())"), 60)

    restored = PgCluster(
        bin_dir=pg.bin_dir, base=private_dir / "restored", port=free_loopback_port()
    )
    restored.base.mkdir()
    restored.sockdir.mkdir()
    for d in (restored.base, restored.sockdir):
        shutil.chown(d, "postgres", "postgres")
    backup = subprocess.run(
        [str(pg.bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pg.port), "-U",
         pg.env()["PGUSER"], "-D", str(restored.datadir), "-X", "none", "-c", "fast"],
        env=pg.env(), user="postgres", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    pg.psql("INSERT INTO t SELECT generate_series(1001, 2500)")
    last = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_archived(pg, last, 60)
    keys = _keys(s3_server, bucket)
    assert any(k.endswith(".zst.age") and ".backup-" in k for k in keys), keys

    fetch = f"'env {common} ENCRYPTION_IDENTITY_FILE={identity} {SEAWALL} postgres wal-fetch %f %p'"
    restored.set_conf(
        port=str(restored.port),
        unix_socket_directories=f"'{restored.sockdir}'",
        archive_mode="off",
        restore_command=fetch,
    )
    (restored.datadir / "recovery.signal").touch()
    shutil.chown(restored.datadir / "recovery.signal", "postgres", "postgres")
    try:
        restored.start(timeout=120)
        deadline = time.monotonic() + 120
        while restored.psql("SELECT pg_is_in_recovery()") != "f":
            assert time.monotonic() < deadline, "recovery from S3 did not finish"
            time.sleep(0.2)
        assert restored.psql("SELECT count(*), max(x) FROM t") == "2500|2500"
    finally:
        restored.destroy()
