"""The WAL hot path stays light: wal-push / wal-fetch run without Typer,
pydantic(-settings), psycopg, rich, httpx or qdrant_client in the process.

Run in a fresh interpreter on a real (synthetic-header) segment so the check
covers the whole path, including encryption and the archive.json write.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from tests.integration.storage.conftest import new_bucket, s3_server
from tests.support.s3server import S3Server

__all__ = ["s3_server"]  # the fixture, used by name

FORBIDDEN = (
    "typer",
    "pydantic",
    "pydantic_settings",
    "pydantic_core",
    "psycopg",
    "rich",
    "httpx",
    "qdrant_client",
    "click",
)

PROBE = """
import json, sys
from seawall.entry import main
codes = [main(["postgres", "wal-push", sys.argv[1]]), main(["postgres", "wal-fetch", sys.argv[2], sys.argv[3]]),
         main(["postgres", "wal-fetch", "000000010000000000000099", sys.argv[3] + "x"])]
roots = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"codes": codes, "modules": roots}))
"""


def segment(tmp: Path, name: str = "000000010000000000000003", size: int = 16 << 20) -> Path:
    """A segment whose first page carries a valid long header (sysid 42)."""
    segno = int(name[8:16], 16) * 256 + int(name[16:], 16)
    head = struct.pack("<HHIQI", 0xD110, 0x0002, 1, segno * size, 0) + b"\0" * 4
    head += struct.pack("<QII", 42, size, 8192)
    path = tmp / name
    path.write_bytes(head + os.urandom(4096) + b"\0" * (size - len(head) - 4096))
    return path


def test_wal_fast_path_imports(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    key, public = age_keys
    seg = segment(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "ENCRYPTION"))}
    env.update(
        BACKUP_DIR=str(tmp_path / "backups"),
        ENCRYPTION="true",
        ENCRYPTION_RECIPIENTS=public,
        ENCRYPTION_IDENTITY_FILE=str(key),
        SEAWALL_WAL_READ_AHEAD_IDLE="1",  # the reader wal-fetch starts goes soon
    )
    dest = tmp_path / "fetched"
    res = subprocess.run(
        [sys.executable, "-c", PROBE, str(seg), seg.name, str(dest)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["codes"] == [0, 0, 1], res.stderr
    assert dest.read_bytes() == seg.read_bytes()
    loaded = [m for m in FORBIDDEN if m in out["modules"]]
    assert loaded == [], f"the WAL hot path imported {loaded}"


FETCH_PROBE = """
import json, sys
from seawall.entry import main
codes = [main(["postgres", "wal-fetch", sys.argv[1], sys.argv[2]]),
         main(["postgres", "wal-fetch", "000000010000000000000099", sys.argv[2] + "x"]),
         main(["postgres", "wal-fetch", "00000002.history", sys.argv[2] + "y"])]
print(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""

#: what only the general wal-fetch path imports: the lean one must not
GENERAL_ONLY = (
    "seawall.postgres.wal.fetch",
    "seawall.postgres.wal.envconfig",
    "seawall.pipeline.decode",
    "seawall.pipeline.store",
    "seawall.pipeline.adapters",
    "seawall.storage.local",
    "seawall.settings",
    "seawall.pipeline",
    "cryptography.hazmat.primitives",
)


def test_wal_fetch_takes_the_lean_path(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    """wal-fetch of an archived segment (encrypted and not) and of missing files,
    in a process that never imports the general path, Typer or cryptography's
    primitives (only its Rust extension)."""
    key, public = age_keys
    for encrypted in (True, False):
        seg = segment(
            tmp_path, "000000010000000000000005" if encrypted else "000000010000000000000006"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "ENCRYPTION"))}
        env["BACKUP_DIR"] = str(tmp_path / "backups")
        # read-ahead on (the default): its client side is on the hot path too
        env["SEAWALL_WAL_READ_AHEAD_IDLE"] = "1"
        if encrypted:
            env.update(
                ENCRYPTION="true", ENCRYPTION_RECIPIENTS=public, ENCRYPTION_IDENTITY_FILE=str(key)
            )
        push = subprocess.run(
            [sys.executable, "-m", "seawall", "postgres", "wal-push", str(seg)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert push.returncode == 0, push.stderr
        (stored,) = (tmp_path / "backups").rglob(f"{seg.name}-*")
        assert stored.name.endswith(".zst.age" if encrypted else ".zst")
        dest = tmp_path / f"fetched-{encrypted}"
        res = subprocess.run(
            [sys.executable, "-c", FETCH_PROBE, seg.name, str(dest)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["codes"] == [0, 1, 1], res.stderr
        assert res.stderr == ""  # missing files are quiet
        assert dest.read_bytes() == seg.read_bytes()
        assert not any(p.name.startswith(f".{dest.name}") for p in tmp_path.iterdir())
        roots = {m.split(".")[0] for m in out["modules"]}
        loaded = [m for m in FORBIDDEN if m in roots]
        loaded += [m for m in GENERAL_ONLY if m in out["modules"]]
        assert loaded == [], f"the lean wal-fetch imported {loaded}"


S3_PROBE = """
import json, sys
from seawall.entry import main
codes = [main(["postgres", "wal-push", sys.argv[1]]), main(["postgres", "wal-push", sys.argv[1]])]
print(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""

#: the general S3 backend and what it stands on: the lean S3 push must not load them
S3_GENERAL_ONLY = (
    "boto3",
    "botocore",
    "s3transfer",
    "seawall.storage.s3.backend",
    "seawall.storage.s3.retry",
    "seawall.storage.local",
    "seawall.settings",
    "seawall.postgres.wal.push",
    "http.client",
    "email",
    # the wrappers storage/s3/leannet.py goes around (~20 ms a push, ADR 0013)
    "socket",
    "ssl",
    "selectors",
    "encodings.idna",
)


def test_wal_push_to_s3_takes_the_lean_path(
    s3_server: S3Server, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """wal-push into BACKUP_DIR=s3://… (first push, which writes archive.json, and a
    retry) in a process that never imports boto3/botocore, pydantic, Typer or the
    general WAL path."""
    _, public = age_keys
    bucket = new_bucket(s3_server)
    seg = segment(tmp_path)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEAWALL_", "ENCRYPTION", "AWS_", "BACKUP_DIR"))
    }
    env.update(
        BACKUP_DIR=f"s3://{bucket}/imports",
        ENCRYPTION="true",
        ENCRYPTION_RECIPIENTS=public,
        AWS_ACCESS_KEY_ID=s3_server.access_key,
        AWS_SECRET_ACCESS_KEY=s3_server.secret_key,
        AWS_ENDPOINT_URL_S3=s3_server.endpoint,
    )
    res = subprocess.run(
        [sys.executable, "-c", S3_PROBE, str(seg)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["codes"] == [0, 0], res.stderr
    page = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="imports/postgresql/wal/")
    assert len([o for o in page["Contents"] if seg.name in o["Key"]]) == 1
    roots = {m.split(".")[0] for m in out["modules"]}
    loaded = [m for m in FORBIDDEN if m in roots]
    loaded += [m for m in S3_GENERAL_ONLY if m in out["modules"] or m in roots]
    assert loaded == [], f"the lean S3 wal-push imported {loaded}"


HIT_PROBE = """
import json, os, sys
from seawall.entry import main
os.chdir(sys.argv[1])
code = main(["postgres", "wal-push", "pg_wal/" + sys.argv[2]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_wal_push_marker_hit_imports_almost_nothing(tmp_path: Path) -> None:
    """A wal-push whose segment the asynchronous pusher already archived (ADR 0017)
    reads a marker and exits: no push machinery (zstd, age, hashing, the S3 client,
    sockets) is loaded, let alone the general path."""
    from seawall.postgres.wal.pushahead import (
        SPOOL,
        file_identity,
        marker_text,
        repository_identity,
    )

    pg_wal = tmp_path / "data" / "pg_wal"
    pg_wal.mkdir(parents=True)
    seg = segment(pg_wal)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "ENCRYPTION"))}
    env.update(BACKUP_DIR="s3://bucket/prefix", WAL_PUSH_AHEAD="4")
    spool = pg_wal / SPOOL
    spool.mkdir(mode=0o700)
    (spool / seg.name).write_bytes(
        marker_text(repository_identity(env), file_identity(seg.stat()), seg.name)
    )
    (spool / seg.name).chmod(0o600)
    res = subprocess.run(
        [sys.executable, "-c", HIT_PROBE, str(tmp_path / "data"), seg.name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["code"] == 0, res.stderr
    assert not (spool / seg.name).exists()
    heavy = ("zstandard", "pyrage", "hashlib", "_ssl", "_socket", "threading",
             "seawall.postgres.wal.s3push", "seawall.postgres.wal.fastpush",
             "seawall.storage.s3.lean", "seawall.postgres.wal.push", *FORBIDDEN)  # fmt: skip
    assert [m for m in heavy if m in out["modules"]] == []
