"""The lean wal-push path (fastpush) keeps every rule of the general one.

Real files, the real age CLI and real processes; the segments carry a valid
long page header (synthetic content). What is checked:

* what the lean path writes is what the general path writes (name, format;
  the stock ``age`` and ``zstd`` CLIs read it back byte for byte);
* it takes over nothing it should not: first push, other file kinds, gzip,
  passphrases, a foreign system identifier, a conflict all fall back to the
  general path *before anything is written*, so refusals keep their messages;
* an identical duplicate is success and writes nothing;
* ``kill -9`` at any moment of a push leaves no complete-looking file that
  is not the segment, and the retry completes the archive;
* the process imports none of the modules it was made lean to avoid.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seawall.postgres.wal import fastpush, lean
from seawall.storage.base import PARTIAL_MARKER, is_partial_name
from seawall.walcore import layout
from seawall.walcore.archive_info import ArchiveInfo
from seawall.walcore.archived import parse_wal_key
from seawall.walcore.layout import ARCHIVE_INFO, CLAIM_SUFFIX, SHA_LEN, WAL_ROOT
from tests.conftest import SEAWALL

SYSID = 7_300_000_000_000_000_042
SEG = 16 << 20


def make_segment(
    directory: Path, name: str = "000000010000000000000003", sysid: int = SYSID, seed: int = 1
) -> Path:
    """A 16 MiB segment with a valid long header and compressible, varied content."""
    segno = int(name[8:16], 16) * 256 + int(name[16:24], 16)
    head = struct.pack("<HHIQI", 0xD110, 0x0002, 1, segno * SEG, 0) + b"\0" * 4
    head += struct.pack("<QII", sysid, SEG, 8192)
    rows = b"".join(
        b"row %08d seed %d payload %s\n" % (i, seed, b"x" * (i % 97)) for i in range(4096)
    )
    body = (rows * (SEG // len(rows) + 1))[: SEG - len(head) - 65536] + os.urandom(65536)
    path = directory / name
    path.write_bytes(head + body)
    return path


def env_for(backup: Path, public: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "ENCRYPTION"))}
    env.update(
        BACKUP_DIR=str(backup),
        PG_CLUSTER_NAME="main",
        COMPRESSION="zstd",
        ENCRYPTION="true",
        ENCRYPTION_RECIPIENTS=public,
    )
    env.update(extra)
    return env


def archive_dir(backup: Path) -> Path:
    return backup / WAL_ROOT / "main"


def stored(backup: Path) -> list[Path]:
    return sorted(p for p in archive_dir(backup).rglob("*") if p.is_file())


def prepare_archive(backup: Path, sysid: int = SYSID, subdir: str = "0000000100000000") -> None:
    """An archive as the first (general) push leaves it."""
    (archive_dir(backup) / subdir).mkdir(parents=True)
    (archive_dir(backup) / ARCHIVE_INFO).write_bytes(ArchiveInfo(str(sysid), SEG, "main").to_json())


def test_constants_match_the_canonical_ones() -> None:
    # one declaration: the storage layer's marker is walcore's (the lean push
    # writes temporaries on the local volume without importing storage)
    assert layout.PARTIAL_MARKER is PARTIAL_MARKER
    assert CLAIM_SUFFIX.startswith(f".claim{PARTIAL_MARKER}")
    assert is_partial_name(f"000000010000000000000003{CLAIM_SUFFIX}")
    assert parse_wal_key(f"000000010000000000000003{CLAIM_SUFFIX}") is None
    assert not layout.is_version_of(
        f"000000010000000000000003{CLAIM_SUFFIX}", "000000010000000000000003"
    )


def test_zstd_backend_is_zstandard() -> None:
    import zstandard

    data = os.urandom(1 << 16) + b"a" * (1 << 20)
    backend = lean.zstd_backend()
    ours = backend.ZstdCompressor(level=1, write_checksum=True).compress(data)
    assert ours == zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data)
    assert zstandard.ZstdDecompressor().decompress(ours) == data


def test_json_field_only_confirms() -> None:
    text = ArchiveInfo(str(SYSID), SEG, "main").to_json().decode()
    assert layout.info_field(text, "system_identifier") == str(SYSID)
    assert layout.info_field(text, "wal_segment_size") == str(SEG)
    assert json.loads(text)["system_identifier"] == str(SYSID)
    twice = text + text
    assert layout.info_field(twice, "system_identifier") is None
    assert layout.info_field('{"system_identifier": "12x"}', "system_identifier") is None
    assert layout.info_field('{"system_identifier": null}', "system_identifier") is None


def test_lean_push_writes_what_the_general_path_writes(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    backup = tmp_path / "b"
    seg = make_segment(tmp_path)
    prepare_archive(backup)
    pushed = fastpush.push(str(seg), env_for(backup, public))
    name = pushed.name
    # where it went, for the caller's mirror copies (no second read of the environment)
    assert (pushed.root, pushed.committed) == (str(backup), True)
    assert pushed.key == f"postgresql/wal/main/0000000100000000/{name}"
    files = stored(backup)
    assert sorted(p.name for p in files) == sorted([ARCHIVE_INFO, name])
    archived = archive_dir(backup) / "0000000100000000" / name
    obj = parse_wal_key(name)
    assert obj is not None and obj.name == seg.name
    assert obj.compression == "zstd" and obj.encrypted
    plain = subprocess.run(
        ["age", "-d", "-i", str(key), str(archived)], capture_output=True, check=True
    ).stdout
    raw = subprocess.run(["zstd", "-dc"], input=plain, capture_output=True, check=True).stdout
    assert raw == seg.read_bytes()
    import hashlib

    assert hashlib.sha256(raw).hexdigest()[:SHA_LEN] == obj.sha256_prefix

    # the general wal-fetch reads it (whole CLI, identity from a file)
    dest = tmp_path / "fetched"
    res = subprocess.run(
        [SEAWALL, "postgres", "wal-fetch", seg.name, str(dest)],
        env=env_for(backup, public, ENCRYPTION_IDENTITY_FILE=str(key)),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == seg.read_bytes()

    # identical duplicate: same name back, nothing written
    before = [(p, p.stat().st_mtime_ns) for p in stored(backup)]
    again = fastpush.push(str(seg), env_for(backup, public))
    assert (again.key, again.committed) == (pushed.key, False)
    assert [(p, p.stat().st_mtime_ns) for p in stored(backup)] == before

    # unencrypted: plain .zst
    plain_backup = tmp_path / "plain"
    prepare_archive(plain_backup)
    plain_name = fastpush.push(str(seg), env_for(plain_backup, public, ENCRYPTION="false")).name
    assert plain_name.endswith(".zst") and not plain_name.endswith(".age")
    blob = (archive_dir(plain_backup) / "0000000100000000" / plain_name).read_bytes()
    out = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout
    assert out == seg.read_bytes()


@pytest.mark.parametrize(
    "case",
    [
        "first-push",
        "new-directory",
        "history-file",
        "gzip",
        "passphrase",
        "foreign",
        "conflict",
        "renamed",
        "short",
        "bad-block-size",
        "bad-recipient",
    ],
)
def test_falls_back_before_writing(case: str, tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    _, public = age_keys
    backup = tmp_path / "b"
    seg = make_segment(tmp_path)
    env = env_for(backup, public)
    if case != "first-push":
        prepare_archive(
            backup,
            sysid=SYSID + 1 if case == "foreign" else SYSID,
            subdir="0000000100000001" if case == "new-directory" else "0000000100000000",
        )
    if case == "history-file":
        seg = tmp_path / "00000002.history"
        seg.write_text("1\t0/3000000\tno recovery target specified\n")
    elif case == "gzip":
        env["COMPRESSION"] = "gzip"
    elif case == "passphrase":
        env.pop("ENCRYPTION_RECIPIENTS")
        env["ENCRYPTION_KEY"] = "a passphrase"
    elif case == "conflict":
        (tmp_path / "other").mkdir()
        other = make_segment(tmp_path / "other", seed=2)  # same name, different content
        assert fastpush.push(str(other), env).name.startswith(seg.name)
    elif case == "renamed":
        renamed = tmp_path / "000000010000000000000004"
        seg.rename(renamed)
        seg = renamed
    elif case == "short":
        seg.write_bytes(seg.read_bytes()[: 1 << 20])
    elif case == "bad-block-size":  # the general path refuses it (exit 9)
        data = bytearray(seg.read_bytes())
        data[36:40] = (1000).to_bytes(4, "little")
        seg.write_bytes(bytes(data))
    elif case == "bad-recipient":  # fails in the encrypting thread, mid-stream
        env["ENCRYPTION_RECIPIENTS"] = "age1" + "q" * 58
    before = [(p, p.read_bytes()) for p in stored(backup)] if backup.exists() else []
    # Fallback, or (bad-recipient) pyrage's error, which wal_fast treats alike
    with pytest.raises(lean.Fallback if case != "bad-recipient" else Exception):
        fastpush.push(str(seg), env)
    after = [(p, p.read_bytes()) for p in stored(backup)] if backup.exists() else []
    assert after == before


def test_cli_refusals_keep_their_messages(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    """Through the console script: lean success, then the general path's refusals."""
    _, public = age_keys
    backup = tmp_path / "b"
    seg = make_segment(tmp_path)
    env = env_for(backup, public)

    def push(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SEAWALL, "postgres", "wal-push", str(path)], env=env, capture_output=True, text=True
        )

    assert push(seg).returncode == 0  # general path: creates archive.json
    nxt = make_segment(tmp_path, "000000010000000000000004")
    res = push(nxt)  # lean path
    assert res.returncode == 0 and res.stderr == ""
    assert len(stored(backup)) == 3
    assert push(nxt).returncode == 0  # identical duplicate
    changed = tmp_path / "c"
    changed.mkdir()
    make_segment(changed, "000000010000000000000004", seed=9)
    res = push(changed / "000000010000000000000004")
    assert res.returncode == 9 and "already archived with different content" in res.stderr
    foreign = tmp_path / "f"
    foreign.mkdir()
    make_segment(foreign, "000000010000000000000005", sysid=SYSID + 7)
    res = push(foreign / "000000010000000000000005")
    assert res.returncode == 9 and "system identifier" in res.stderr
    assert len(stored(backup)) == 3


def test_kill_9_at_any_moment_leaves_no_false_file(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """SIGKILL the lean push at moments spread over its whole run; after each,
    every complete-looking file in the archive is the segment itself and
    anything else is a ``.partial-`` temporary; a retry then succeeds."""
    key, public = age_keys
    backup = tmp_path / "b"
    env = env_for(backup, public)
    first = make_segment(tmp_path, "000000010000000000000002")
    assert subprocess.run([SEAWALL, "postgres", "wal-push", str(first)], env=env).returncode == 0
    # how long one whole lean push takes here, now (the machine may be busy)
    timed = make_segment(tmp_path, "000000010000000000000020")
    t0 = time.monotonic()
    assert subprocess.run([SEAWALL, "postgres", "wal-push", str(timed)], env=env).returncode == 0
    whole = time.monotonic() - t0
    # Kill moments from right after exec to well past the end of a normal push.
    # A push may take longer than the timed one when the machine gets busier:
    # while no kill has landed after the commit point yet, the schedule goes
    # on with doubling delays (each kill still checked the same way), so the
    # test does not depend on the load staying as it was when timed.
    planned = 12
    delays = [2 * whole * i / (planned - 1) for i in range(planned)]
    saw_partial = saw_complete = False
    for i, delay in enumerate(delays):  # (appended to while iterating, on purpose)
        seg = make_segment(tmp_path, f"0000000100000000000000{i + 3:02X}", seed=i + 3)
        proc = subprocess.Popen(
            [SEAWALL, "postgres", "wal-push", str(seg)], env=env, stderr=subprocess.DEVNULL
        )
        try:  # SIGKILL at `delay`, unless the push has ended by then
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        directory = archive_dir(backup) / "0000000100000000"
        for path in directory.iterdir():
            if PARTIAL_MARKER in path.name:
                saw_partial = True
                continue
            if not path.name.startswith(seg.name):
                continue
            saw_complete = True
            plain = subprocess.run(
                ["age", "-d", "-i", str(key), str(path)], capture_output=True, check=True
            ).stdout
            raw = subprocess.run(
                ["zstd", "-dc"], input=plain, capture_output=True, check=True
            ).stdout
            assert raw == seg.read_bytes(), path
        retry = subprocess.run(
            [SEAWALL, "postgres", "wal-push", str(seg)], env=env, capture_output=True, text=True
        )
        assert retry.returncode == 0, retry.stderr
        done = [p for p in directory.iterdir() if p.name.startswith(seg.name + "-")]
        assert len([p for p in done if PARTIAL_MARKER not in p.name]) == 1
        if i == len(delays) - 1 and not saw_complete and len(delays) < planned + 8:
            delays.append(max(delays[-1], whole) * 2)
    # the kills did land both before and after the commit point
    assert saw_complete
    del saw_partial  # a kill inside the ~1 ms write is luck, not a requirement


LEAN_PROBE = """
import sys
from seawall.entry import main
code = main(["postgres", "wal-push", sys.argv[1]])
modules = sorted(sys.modules)
import json
print(json.dumps({"code": code, "modules": modules}))
"""

#: what the lean path was made lean to avoid (each costs 1-5 ms per segment)
AVOIDED = (
    "typer",
    "pydantic",
    "psycopg",
    "pathlib",
    "dataclasses",
    "typing",
    "json",
    "re",
    "platform",
    "zstandard",  # the package __init__ (platform, typing); its C backend is fine
    "threading",
    "seawall.pipeline",
    "seawall.errors",
)


def test_lean_push_imports_only_what_it_needs(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    _, public = age_keys
    backup = tmp_path / "b"
    prepare_archive(backup)
    seg = make_segment(tmp_path)
    res = subprocess.run(
        [sys.executable, "-c", LEAN_PROBE, str(seg)],
        env=env_for(backup, public),
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["code"] == 0, res.stderr
    assert len(stored(backup)) == 2
    loaded = [m for m in AVOIDED if m in out["modules"]]
    assert loaded == [], f"the lean wal-push imported {loaded}"
