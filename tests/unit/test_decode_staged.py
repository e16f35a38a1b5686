"""Decoding into a file while downloading: nothing under the name before the sha256 matched.

ADR 0016 addendum: when the consumer reads a file (pg_restore -j's dump, a
Qdrant snapshot), ``decode_to`` decodes while it reads and hashes, into a
hidden temporary beside the destination (:class:`StagedFile`), and only a
checked temporary can be renamed into place. These run against a real
``LocalStorage`` that counts the bytes it serves; the flipped-byte tests
change the stored file itself.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from seawall.errors import VerificationError
from seawall.pipeline import KeyRing, PipelineSpec, decode, decode_to, store_stream
from seawall.pipeline.keys import generate_identity
from seawall.pipeline.spool import MEMORY_SPOOL
from seawall.pipeline.staged import StagedFile
from seawall.storage.factory import open_repository
from seawall.storage.local import LocalStorage
from tests.unit.test_decode_reads_once import CountingStorage

SECRET, PUBLIC = generate_identity()
KEYS = KeyRing.build(recipients=[PUBLIC], identity=SECRET)
SIZES = {"small": MEMORY_SPOOL // 2, "large": 3 * MEMORY_SPOOL + 4321}


def _store(storage: LocalStorage, data: bytes) -> tuple[str, int]:
    spec = PipelineSpec(compression="zstd", keys=KEYS)
    res = store_stream(io.BytesIO(data), storage, "a.zst.age", spec)
    return res.sha256, res.stored_size


def _flip(path: Path, where: str) -> None:
    size = path.stat().st_size
    pos = {"first": 0, "middle": size // 2, "last": size - 1}[where]
    with open(path, "r+b") as fh:
        fh.seek(pos)
        byte = fh.read(1)
        fh.seek(pos)
        fh.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("ahead", [False, True], ids=["one-thread", "reader-thread"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_decoded_into_place_in_one_read_without_a_spool(
    tmp_path: Path, size: int, ahead: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decode, "STAGED_READ_AHEAD", ahead)
    # TMPDIR that cannot be used: the spool would fail, so none is made
    monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-dir"))
    storage = CountingStorage(tmp_path / "repo")
    data = os.urandom(size)
    sha, stored = _store(storage, data)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "dump"
    storage.served = 0
    seen: list[list[str]] = []
    with StagedFile(dest, expected_size=len(data)) as staged:
        real_write = staged.write

        def write(chunk: bytes) -> int:
            seen.append(sorted(os.listdir(out)))
            return real_write(chunk)

        staged.write = write  # type: ignore[method-assign]
        res = decode_to(
            storage, "a.zst.age", staged, KEYS,
            expected_sha256=sha, expected_size=stored, compression="zstd",
        )  # fmt: skip
        assert not dest.exists(), "the decoded file was visible before commit"
        staged.commit()
    assert dest.read_bytes() == data and res.sha256 == sha and res.raw_size == len(data)
    assert storage.served == stored, f"served {storage.served} bytes of a {stored}-byte object"
    # O_TMPFILE: while decoding there is no name at all in the directory
    assert seen and all(names == [] for names in seen), seen[:3]
    assert os.listdir(out) == ["dump"]
    assert dest.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("ahead", [False, True], ids=["one-thread", "reader-thread"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_a_flipped_byte_leaves_nothing_at_the_destination(
    tmp_path: Path, size: int, where: str, ahead: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decode, "STAGED_READ_AHEAD", ahead)
    storage = LocalStorage(tmp_path / "repo")
    sha, stored = _store(storage, os.urandom(size // 2) + b"z" * (size // 2))
    _flip(storage.path("a.zst.age"), where)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "dump"
    with StagedFile(dest) as staged:
        with pytest.raises(VerificationError, match="sha256 mismatch") as err:
            decode_to(
                storage, "a.zst.age", staged, KEYS,
                expected_sha256=sha, expected_size=stored, compression="zstd",
            )  # fmt: skip
        assert err.value.exit_code == 3
        assert not staged.checked
        with pytest.raises(AssertionError, match="never checked"):
            staged.commit()
    assert os.listdir(out) == [], "a tampered artifact left a file behind"


def test_unchecked_content_cannot_be_committed(tmp_path: Path) -> None:
    """Written without decode_to's sha256 comparison (no manifest sha256): refused."""
    storage = LocalStorage(tmp_path / "repo")
    _store(storage, b"x" * 1000)
    dest = tmp_path / "dump"
    with StagedFile(dest) as staged:
        decode_to(storage, "a.zst.age", staged, KEYS)
        with pytest.raises(AssertionError):
            staged.commit()
    assert not dest.exists() and os.listdir(tmp_path) == ["repo"]


def test_a_bad_primary_copy_falls_through_to_the_mirror(tmp_path: Path) -> None:
    """MIRRORS: the primary's flipped copy was half decoded into the temporary;
    the mirror's good copy replaces it from byte 0, not appended to it."""
    repo = open_repository(str(tmp_path / "primary"), [str(tmp_path / "mirror")])
    data = os.urandom(SIZES["large"])
    res = store_stream(io.BytesIO(data), repo, "a.zst.age", PipelineSpec(keys=KEYS))
    _flip(tmp_path / "primary" / "a.zst.age", "last")
    dest = tmp_path / "dump"
    with StagedFile(dest) as staged:
        decode_to(
            repo, "a.zst.age", staged, KEYS,
            expected_sha256=res.sha256, expected_size=res.stored_size,
        )  # fmt: skip
        staged.commit()
    assert dest.read_bytes() == data


_KILLED_CHILD = """
import sys
from pathlib import Path
from seawall.pipeline import KeyRing, decode_to
from seawall.pipeline.staged import StagedFile
from seawall.storage.local import LocalStorage

class Paused(StagedFile):
    def write(self, data):
        n = super().write(data)
        if self.size >= 2 << 20 and not getattr(self, "told", False):
            self.told = True
            print("writing", flush=True)
            sys.stdin.readline()  # the parent kills us here, mid-decode
        return n

import os
repo, sha, size, dest = sys.argv[1:]
keys = KeyRing.build(identity=os.environ["SEAWALL_TEST_IDENTITY"])
with Paused(Path(dest)) as staged:
    decode_to(LocalStorage(Path(repo)), "a.zst.age", staged, keys,
              expected_sha256=sha, expected_size=int(size))
    staged.commit()
"""


def test_kill_9_mid_decode_leaves_nothing(tmp_path: Path) -> None:
    """SIGKILL while decoded bytes are being written: the unnamed temporary
    (O_TMPFILE) goes with the process, no name appears in the directory."""
    import signal
    import subprocess
    import sys

    storage = LocalStorage(tmp_path / "repo")
    sha, stored = _store(storage, os.urandom(SIZES["large"]))
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, str(tmp_path / "repo"), sha, str(stored),
         str(out / "dump")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "SEAWALL_TEST_IDENTITY": SECRET},  # never in argv
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert os.listdir(out) == [], "a killed restore left a file behind"
