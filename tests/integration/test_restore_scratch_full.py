"""The restore's scratch space on a disk that is too small or fills up: one line, exit 7.

``decode_to`` reads each object once into a spool in ``TMPDIR`` before
decoding it into a stream (issue 14), or decodes it while reading into a
hidden file beside a file destination (:class:`StagedFile`, ADR 0016
addendum). Real conditions only: a tmpfs of our own, too small from the
start (refused before the first byte is read), or filled by another writer
while the object is read (the kernel's ENOSPC). Either way nothing reaches
the sink, nothing appears under the destination's name and nothing is left
in the scratch directory.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from seawall.errors import StorageError
from seawall.pipeline import KeyRing, PipelineSpec, decode_to, store_stream
from seawall.pipeline.keys import generate_identity
from seawall.pipeline.spool import MEMORY_SPOOL
from seawall.pipeline.staged import StagedFile
from seawall.storage.local import LocalStorage
from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import manifests, seawall_env
from tests.support.pgcluster import PgCluster

SECRET, PUBLIC = generate_identity()
KEYS = KeyRing.build(recipients=[PUBLIC], identity=SECRET)
MIB = 1 << 20


@pytest.fixture
def tmpfs() -> Iterator[Callable[[str], Path]]:
    """Mount tmpfs file systems of a given size (``"2m"``); unmounted after the test."""
    points: list[Path] = []

    def mount(size: str) -> Path:
        point = Path(tempfile.mkdtemp(prefix="seawall-scratch-", dir="/tmp"))
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(point)],
            check=True,
        )
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", str(point)], check=True)
        point.rmdir()


class RecordingSink:
    size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def _stored(root: Path, mib: int) -> tuple[LocalStorage, str, int]:
    storage = LocalStorage(root)
    spec = PipelineSpec(compression="zstd", keys=KEYS)
    res = store_stream(io.BytesIO(os.urandom(mib * MIB)), storage, "a.zst.age", spec)
    assert res.stored_size > MEMORY_SPOOL  # a file spool, not the in-memory one
    return storage, res.sha256, res.stored_size


def test_scratch_too_small_is_refused_before_reading(
    tmp_path: Path, tmpfs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmpfs("2m")
    monkeypatch.setenv("TMPDIR", str(scratch))
    storage, sha, size = _stored(tmp_path / "repo", 6)
    opened: list[str] = []
    real_open = storage.open_read

    def open_read(key: str) -> BinaryIO:
        opened.append(key)
        return real_open(key)

    storage.open_read = open_read  # type: ignore[method-assign]
    sink = RecordingSink()
    with pytest.raises(StorageError) as err:
        decode_to(storage, "a.zst.age", sink, KEYS, expected_sha256=sha, expected_size=size)
    line = str(err.value)
    assert err.value.exit_code == 7 and "\n" not in line
    assert str(scratch) in line and "TMPDIR" in line and str(size) in line, line
    assert opened == [] and sink.size == 0
    assert os.listdir(scratch) == []


def test_scratch_filling_up_while_spooling(
    tmp_path: Path, tmpfs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Room at the check, then another writer takes it: the kernel's ENOSPC, one line."""
    scratch = tmpfs("12m")
    monkeypatch.setenv("TMPDIR", str(scratch))
    storage, sha, size = _stored(tmp_path / "repo", 8)
    real_open = storage.open_read

    def open_read(key: str) -> BinaryIO:
        # after the space check, before the first byte: fill all but 1 MiB
        free = os.statvfs(scratch).f_bavail * os.statvfs(scratch).f_frsize
        with open(scratch / "other-writer", "wb") as fh:
            fh.write(b"\0" * (free - MIB))
        return real_open(key)

    storage.open_read = open_read  # type: ignore[method-assign]
    sink = RecordingSink()
    with pytest.raises(StorageError) as err:
        decode_to(storage, "a.zst.age", sink, KEYS, expected_sha256=sha, expected_size=size)
    line = str(err.value)
    assert err.value.exit_code == 7 and "\n" not in line
    assert line.startswith("no room to spool a.zst.age") and str(scratch) in line, line
    assert sink.size == 0
    assert os.listdir(scratch) == ["other-writer"]  # the spool is gone
    (scratch / "other-writer").unlink()
    # the control: with the room back (and no other writer), the same restore works
    storage.open_read = real_open  # type: ignore[method-assign]
    out = io.BytesIO()
    decode_to(storage, "a.zst.age", out, KEYS, expected_sha256=sha, expected_size=size)
    assert len(out.getvalue()) == 8 * MIB


def test_staged_destination_too_small_is_refused_before_reading(
    tmp_path: Path, tmpfs: Callable[[str], Path]
) -> None:
    scratch = tmpfs("2m")
    storage, sha, size = _stored(tmp_path / "repo", 6)
    opened: list[str] = []
    real_open = storage.open_read

    def open_read(key: str) -> BinaryIO:
        opened.append(key)
        return real_open(key)

    storage.open_read = open_read  # type: ignore[method-assign]
    with pytest.raises(StorageError) as err, StagedFile(scratch / "dump", 6 * MIB) as staged:
        decode_to(storage, "a.zst.age", staged, KEYS, expected_sha256=sha, expected_size=size)
    line = str(err.value)
    assert err.value.exit_code == 7 and "\n" not in line
    assert line.startswith("no room to decode dump") and str(scratch) in line, line
    assert str(6 * MIB) in line and "TMPDIR" in line, line
    assert opened == [] and os.listdir(scratch) == []


def test_staged_destination_filling_up_while_decoding(
    tmp_path: Path, tmpfs: Callable[[str], Path]
) -> None:
    """Room at the check, then another writer takes it: the kernel's ENOSPC
    mid-decode, one line; the hidden temporary is removed, no ``dump`` appears."""
    scratch = tmpfs("12m")
    storage, sha, size = _stored(tmp_path / "repo", 8)
    real_open = storage.open_read

    def open_read(key: str) -> BinaryIO:
        free = os.statvfs(scratch).f_bavail * os.statvfs(scratch).f_frsize
        with open(scratch / "other-writer", "wb") as fh:
            fh.write(b"\0" * (free - MIB))
        return real_open(key)

    storage.open_read = open_read  # type: ignore[method-assign]
    with pytest.raises(StorageError) as err, StagedFile(scratch / "dump", 8 * MIB) as staged:
        decode_to(storage, "a.zst.age", staged, KEYS, expected_sha256=sha, expected_size=size)
    line = str(err.value)
    assert err.value.exit_code == 7 and "\n" not in line
    assert line.startswith("no room to decode dump") and str(scratch) in line, line
    assert os.listdir(scratch) == ["other-writer"]
    (scratch / "other-writer").unlink()
    # the control: with the room back, the same decode lands under its name
    storage.open_read = real_open  # type: ignore[method-assign]
    with StagedFile(scratch / "dump", 8 * MIB) as staged:
        decode_to(storage, "a.zst.age", staged, KEYS, expected_sha256=sha, expected_size=size)
        staged.commit()
    assert (scratch / "dump").stat().st_size == 8 * MIB


def test_postgres_restore_with_full_scratch_is_one_line(
    pg: PgCluster, backup_dir: Path, tmpfs: Callable[[str], Path]
) -> None:
    """The CLI as a user runs it: TMPDIR on a full disk, exit 7 and one line,
    no database created, pg_restore never fed."""
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE t AS SELECT g, md5(g::text) || md5((g * 7)::text) AS v "
        "FROM generate_series(1, 120000) g",
        "app",
    )
    env = seawall_env(pg, backup_dir, ENCRYPTION="false", COMPRESSION="none")
    res = run_seawall(["postgres", "backup", "--database", "app"], env)
    assert res.returncode == 0, res.stderr
    [m] = manifests(backup_dir, "app")
    assert m["artifacts"][0]["stored_size"] > MEMORY_SPOOL or any(
        a["stored_size"] > MEMORY_SPOOL for a in m["artifacts"]
    )
    scratch = tmpfs("1m")
    with open(scratch / "filler", "wb") as fh:
        try:
            while fh.write(b"\0" * 65536):
                fh.flush()
        except OSError as exc:
            assert exc.errno == 28  # ENOSPC: the scratch disk is 100 % full
    env["TMPDIR"] = str(scratch)
    res = run_seawall(["postgres", "restore", "latest", "-d", "app", "--target-db", "copy"], env)
    assert res.returncode == 7, (res.returncode, res.stderr)
    plain = [ln for ln in res.stderr.splitlines() if not _is_json(ln)]
    assert len(plain) == 1, res.stderr
    # the dump is decoded into TMPDIR while downloaded (ADR 0016 addendum):
    # refused before the first byte, as its raw_size does not fit
    assert plain[0].startswith("seawall: error: no room to decode dump"), plain[0]
    assert str(scratch) in plain[0] and "TMPDIR" in plain[0]
    assert "Traceback" not in res.stderr
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'copy'").strip() == "0"


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
