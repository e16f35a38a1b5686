"""wal-push into ``BACKUP_DIR=s3://bucket/prefix`` on the lean path, against a real S3 server.

SeaweedFS (``weed mini``, tests/support/s3server.py) on 127.0.0.1; the
segments are synthetic (a valid long header) except in the archive_command
test, where a real PostgreSQL 15 cluster archives through seawall and the
server is SIGKILLed while a segment's PUT is in flight.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from seawall.ports import free_loopback_port
from tests.conftest import SEAWALL
from tests.integration.storage.conftest import new_bucket, own_s3_server, s3_server
from tests.integration.wal.helpers import wait_archived
from tests.integration.wal.s3helpers import (
    _decode,
    _env,
    _fetch,
    _keys,
    _push,
    _segment_in,
    private_dir,
)  # fmt: skip
from tests.integration.wal.test_wal_fast_imports import segment
from tests.support.holdproxy import HoldingProxy
from tests.support.pgcluster import PgCluster
from tests.support.s3server import S3Server

__all__ = ["own_s3_server", "private_dir", "s3_server"]  # fixtures used by name below


def test_lean_push_to_s3(s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    """Same key layout as the local archive; archive.json on the first push; a retry
    is success with one object; stock age + zstd read it back; plain zstd too."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}/team/prod", public, PG_CLUSTER_NAME="db1")
    seg = segment(tmp_path, "000000010000000300000041")
    first = _push(seg, env)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    again = _push(seg, env)  # PostgreSQL retrying after a crash: success, nothing new
    assert again.returncode == 0, again.stderr
    keys = _keys(s3_server, bucket)
    wal = [k for k in keys if "/00000001000000030000004" in k]
    sha = hashlib.sha256(seg.read_bytes()).hexdigest()[:40]
    assert wal == [f"team/prod/postgresql/wal/db1/0000000100000003/{seg.name}-{sha}.zst.age"]
    assert _decode(s3_server, bucket, wal[0], key) == seg.read_bytes()

    info = json.loads(
        s3_server.client()
        .get_object(Bucket=bucket, Key="team/prod/postgresql/wal/db1/archive.json")["Body"]
        .read()
    )
    from seawall.walcore.archive_info import FORMAT_VERSION, ArchiveInfo

    expected = json.loads(ArchiveInfo("42", 16 << 20, "db1", info["created_at"]).to_json())
    assert info == expected and info["format_version"] == FORMAT_VERSION

    # unencrypted by seawall, encrypted at rest by the server (S3_SSE, SSE-S3)
    plain_env = {k: v for k, v in env.items() if not k.startswith("ENCRYPTION")}
    plain_env["S3_SSE"] = "AES256"
    seg2 = segment(tmp_path, "000000010000000300000042")
    res = _push(seg2, plain_env)
    assert res.returncode == 0, res.stderr
    (plain,) = [k for k in _keys(s3_server, bucket) if seg2.name in k]
    assert plain.endswith(".zst") and _decode(s3_server, bucket, plain, None) == seg2.read_bytes()
    head = s3_server.client().head_object(Bucket=bucket, Key=plain)
    assert head.get("ServerSideEncryption") == "AES256"
    assert "ServerSideEncryption" not in s3_server.client().head_object(Bucket=bucket, Key=wal[0])


def test_other_content_under_an_archived_name_is_refused(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """ADR 0008 on S3: a name already archived with other content is never stored twice."""
    _, public = age_keys
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}", public)
    seg = segment(tmp_path, "000000010000000000000007")
    assert _push(seg, env).returncode == 0
    other = _segment_in(tmp_path / "other", "000000010000000000000007")
    assert other.read_bytes() != seg.read_bytes()
    res = _push(other, env)
    assert res.returncode == 9, res.stderr
    assert "already archived with different content" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert len([k for k in _keys(s3_server, bucket) if "000000010000000000000007" in k]) == 1


def test_racing_pushes_of_different_content(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """Two pushes of one name with different content, released at the same instant
    (a primary and a diverged standby): never both told 'archived'."""
    _, public = age_keys
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}", public)
    assert _push(segment(tmp_path, "000000010000000000000001"), env).returncode == 0  # archive.json
    script = (
        "import os, sys, time\n"
        "from seawall.entry import main\n"
        "t = float(sys.argv[2])\n"
        "time.sleep(max(0, t - time.time()))\n"
        "os._exit(main(['postgres', 'wal-push', sys.argv[1]]))\n"
    )
    python = str(Path(SEAWALL).parent / "python")
    for round_ in range(6):
        name = f"0000000100000000000000{0x10 + round_:02X}"
        a = _segment_in(tmp_path / f"a{round_}", name)
        b = _segment_in(tmp_path / f"b{round_}", name)
        at = str(time.time() + 1.5)
        procs = [
            subprocess.Popen([python, "-c", script, str(p), at], env=env, stderr=subprocess.PIPE)
            for p in (a, b)
        ]
        codes = [p.wait(timeout=120) for p in procs]
        for p in procs:
            assert p.stderr is not None
            p.stderr.close()
        stored = [k for k in _keys(s3_server, bucket) if f"/{name}-" in k]
        assert codes.count(0) <= 1, (round_, codes, stored)
        assert set(codes) <= {0, 9}, codes
        assert codes.count(0) <= 1, (round_, codes, stored)
        if 0 in codes:  # only the acknowledged version stays: the loser withdrew its own
            winner = (a, b)[codes.index(0)]
            sha = hashlib.sha256(winner.read_bytes()).hexdigest()[:40]
            assert len(stored) == 1 and sha in stored[0], (codes, stored)
        else:  # both saw each other and withdrew: PostgreSQL retries
            assert stored == [], (codes, stored)


def test_racing_pushes_of_the_same_content(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """A primary and a standby (archive_mode=always) pushing the same segment at the
    same instant: both succeed, one object (If-None-Match: * answers the second 412)."""
    _, public = age_keys
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}", public)
    assert _push(segment(tmp_path, "000000010000000000000001"), env).returncode == 0
    script = (
        "import os, sys, time\n"
        "from seawall.entry import main\n"
        "time.sleep(max(0, float(sys.argv[2]) - time.time()))\n"
        "os._exit(main(['postgres', 'wal-push', sys.argv[1]]))\n"
    )
    python = str(Path(SEAWALL).parent / "python")
    for round_ in range(4):
        name = f"0000000100000000000000{0x30 + round_:02X}"
        a = _segment_in(tmp_path / f"s{round_}", name)
        b = tmp_path / f"t{round_}" / name
        b.parent.mkdir()
        shutil.copyfile(a, b)
        at = str(time.time() + 1.5)
        procs = [subprocess.Popen([python, "-c", script, str(p), at], env=env) for p in (a, b)]
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
        assert len([k for k in _keys(s3_server, bucket) if f"/{name}-" in k]) == 1


def test_bad_credentials_missing_bucket_read_only_key(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """One line each, exit 7 (docs/exit-codes.md), no secret in it, nothing stored."""
    _, public = age_keys
    bucket = new_bucket(s3_server)
    seg = segment(tmp_path, "000000010000000000000003")
    secret_file = tmp_path / "secret"
    secret_file.write_text("not-the-secret-" + "9" * 20 + "\n")
    cases = {
        "wrong secret (from AWS_SECRET_ACCESS_KEY_FILE)": (
            _env(s3_server, f"s3://{bucket}", public, AWS_SECRET_ACCESS_KEY_FILE=str(secret_file)),
            "rejected the credentials",
        ),
        "unknown key id": (
            _env(s3_server, f"s3://{bucket}", public, AWS_ACCESS_KEY_ID="AKIDNOSUCHKEY00000"),
            "rejected the credentials",
        ),
        "missing bucket": (
            _env(s3_server, "s3://no-such-bucket-here/x", public),
            "does not exist: create it",
        ),
        "read-only key": (
            _env(
                s3_server,
                f"s3://{bucket}",
                public,
                AWS_ACCESS_KEY_ID=s3_server.ro_access_key,
                AWS_SECRET_ACCESS_KEY=s3_server.ro_secret_key,
            ),
            "denied",
        ),
    }
    for label, (env, needle) in cases.items():
        if "FILE" in label:
            del env["AWS_SECRET_ACCESS_KEY"]
        res = _push(seg, env)
        assert res.returncode == 7, (label, res.stderr)
        assert needle in res.stderr, (label, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, (label, res.stderr)
        for secret in (s3_server.secret_key, s3_server.ro_secret_key, "9" * 20):
            assert secret not in res.stderr
    assert [k for k in _keys(s3_server, bucket) if "0000000100000000" in k] == []


def test_archive_command_into_s3_survives_the_server_killed_mid_put(
    own_s3_server: S3Server,
    pg_factory: Callable[..., PgCluster],
    age_keys: tuple[Path, str],
    private_dir: Path,
) -> None:
    """A real PG15 cluster archives into S3 through seawall; the server is SIGKILLed
    while a segment's PUT is in flight: wal-push exits non-zero, PostgreSQL keeps
    the segment and retries, and after the restart the segment is archived: every
    object in the bucket is complete and holds exactly its named content."""
    key, public = age_keys
    server = own_s3_server
    bucket = new_bucket(server)
    proxy = HoldingProxy(server.ports["s3"])
    secret = private_dir / "aws-secret"
    secret.write_text(server.secret_key + "\n")
    secret.chmod(0o400)
    shutil.chown(secret, "postgres", "postgres")
    command = (
        f"'env BACKUP_DIR=s3://{bucket}/wal-test AWS_ENDPOINT_URL={proxy.endpoint} "
        f"AWS_ACCESS_KEY_ID={server.access_key} AWS_SECRET_ACCESS_KEY_FILE={secret} "
        f"SEAWALL_WAL_S3_DEADLINE=3 ENCRYPTION=true ENCRYPTION_RECIPIENTS={public} "
        f"{SEAWALL} postgres wal-push %p'"
    )
    assert server.secret_key not in command
    pg = pg_factory(
        version=15,
        extra_conf={"archive_mode": "on", "archive_command": command, "wal_keep_size": "0"},
    )
    try:
        pg.psql(
            "CREATE TABLE t (x text); INSERT INTO t SELECT repeat('a', 100) FROM generate_series(1, 1000)"
        )
        first = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
        wait_archived(pg, first, 60)
        assert any(f"/{first}-" in k for k in _keys(server, bucket))

        proxy.arm()
        pg.psql("INSERT INTO t SELECT md5(i::text) FROM generate_series(1, 50000) i")
        held = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
        assert proxy.holding.wait(60), "no segment PUT reached the proxy"
        assert held.encode() in proxy.held_request
        server.kill()  # SIGKILL with the PUT's body half sent
        proxy.release.set()
        deadline = time.monotonic() + 90
        failed = ""
        while time.monotonic() < deadline:
            failed = pg.psql("SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver")
            if failed == held:
                break
            time.sleep(0.2)
        assert failed == held, "wal-push did not fail while the server was down"
        assert (pg.datadir / "pg_wal" / "archive_status" / f"{held}.ready").exists()

        server.start()  # same ports, same data
        for k in _keys(server, bucket):  # nothing partial under any final key
            if "/0000000" in k:
                _decode(server, bucket, k, key)
        pg.psql("SELECT pg_switch_wal()")  # wakes the archiver up
        wait_archived(pg, held, 120)
        stored = [k for k in _keys(server, bucket) if f"/{held}-" in k]
        assert len(stored) == 1
        raw = _decode(server, bucket, stored[0], key)
        assert len(raw) == 16 << 20
    finally:
        proxy.close()


def test_retries_and_integrity_on_the_wire(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """503 SlowDown and connection resets are retried; a byte damaged on the way is
    refused by the server (x-amz-checksum-sha256: BadDigest) and the PUT re-sent; a
    server that stays down is exit 7 within the deadline; profile credentials are
    handed to the general path (not in this build: one line, exit 2)."""
    from tests.support.faultproxy import FaultProxy

    key, public = age_keys
    bucket = new_bucket(s3_server)
    faults = FaultProxy(s3_server.ports["s3"], plan=["503", "reset", "503"])
    try:
        env = _env(s3_server, f"s3://{bucket}", public, AWS_ENDPOINT_URL=faults.endpoint)
        seg = segment(tmp_path, "000000010000000000000041")
        res = _push(seg, env)
        assert res.returncode == 0, res.stderr
        assert faults.faults == 3
    finally:
        faults.close()

    proxy = HoldingProxy(s3_server.ports["s3"])
    try:
        env = _env(s3_server, f"s3://{bucket}", public, AWS_ENDPOINT_URL=proxy.endpoint)
        proxy.flip_armed = True
        seg2 = _segment_in(tmp_path / "flip", "000000010000000000000042")
        res = _push(seg2, env)
        assert res.returncode == 0, res.stderr
        assert proxy.flipped == 1
        (stored,) = [k for k in _keys(s3_server, bucket) if seg2.name in k]
        assert _decode(s3_server, bucket, stored, key) == seg2.read_bytes()
    finally:
        proxy.close()

    down = f"http://127.0.0.1:{free_loopback_port()}"  # nothing listens there
    env = _env(s3_server, f"s3://{bucket}", public, AWS_ENDPOINT_URL=down)
    env["SEAWALL_WAL_S3_DEADLINE"] = "2"
    started = time.monotonic()
    res = _push(_segment_in(tmp_path / "down", "000000010000000000000043"), env)
    assert res.returncode == 7, res.stderr
    assert "cannot reach S3" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 60

    profile = _env(s3_server, f"s3://{bucket}", public, AWS_PROFILE="prod")
    res = _push(_segment_in(tmp_path / "profile", "000000010000000000000044"), profile)
    assert res.returncode == 2, res.stderr
    assert "AWS_PROFILE" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not Path("s3:").exists() and not (tmp_path / "s3:").exists()
    assert [k for k in _keys(s3_server, bucket) if "00000043" in k or "00000044" in k] == []


def test_history_and_partial_files(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """A timeline history file and a .partial segment (what a promotion archives)
    are pushed by the lean S3 path under the local layout; the history file is
    fetched back; other content under an archived history name is refused."""
    key, public = age_keys
    bucket = new_bucket(s3_server)
    env = _env(s3_server, f"s3://{bucket}", public, ENCRYPTION_IDENTITY_FILE=str(key))
    assert _push(segment(tmp_path, "000000010000000000000001"), env).returncode == 0
    history = tmp_path / "00000002.history"
    history.write_text("1\t0/3000000\tno recovery target specified\n")
    assert _push(history, env).returncode == 0
    partial = tmp_path / "000000010000000000000003.partial"
    shutil.copyfile(_segment_in(tmp_path / "p", "000000010000000000000003"), partial)
    res = _push(partial, env)
    assert res.returncode == 0, res.stderr
    keys = _keys(s3_server, bucket)
    hsha = hashlib.sha256(history.read_bytes()).hexdigest()[:40]
    psha = hashlib.sha256(partial.read_bytes()).hexdigest()[:40]
    assert f"postgresql/wal/main/history/00000002.history-{hsha}.zst.age" in keys
    assert f"postgresql/wal/main/0000000100000000/{partial.name}-{psha}.zst.age" in keys

    dest = tmp_path / "restored-history"
    res = _fetch("00000002.history", dest, env)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == history.read_bytes()

    history.write_text("1\t0/4000000\tanother timeline\n")
    refused = _push(history, env)
    assert refused.returncode == 9, refused.stderr
    assert len([k for k in _keys(s3_server, bucket) if "00000002.history" in k]) == 1
