"""``decode_to`` reads a stored object once and decodes the bytes it hashed (issue 14).

Before the spool, a restore hashed the object in one pass and read it again
to decode it: twice the download from object storage, and the bytes decoded
were not the bytes hashed (an object changed between the two reads reached
the sink before the end-of-stream check noticed). These tests count the
bytes the repository actually serves through a real ``LocalStorage``; both
failed against the pre-pass ``decode_to`` (2x the stored size; the changed
object's bytes reached the sink).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from seawall.errors import VerificationError
from seawall.pipeline import KeyRing, PipelineSpec, decode_to, store_stream
from seawall.pipeline.keys import generate_identity
from seawall.pipeline.spool import MEMORY_SPOOL
from seawall.storage.local import LocalStorage

SECRET, PUBLIC = generate_identity()
X25519 = KeyRing.build(recipients=[PUBLIC], identity=SECRET)


class _Counted(io.RawIOBase):
    def __init__(self, inner: BinaryIO, owner: CountingStorage) -> None:
        self._inner = inner
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = self._inner.readinto(b)  # type: ignore[attr-defined]
        self._owner.served += n
        return int(n)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
            self._owner.closed_reads += 1
            self._owner.after_read()
        super().close()


class CountingStorage(LocalStorage):
    """A real local repository that counts the bytes it serves to readers."""

    served = 0
    closed_reads = 0

    def after_read(self) -> None:
        """Called when a reader of the repository closes its handle."""

    def open_read(self, key: str) -> BinaryIO:
        return io.BufferedReader(_Counted(super().open_read(key), self))  # type: ignore[return-value]


def _store(storage: LocalStorage, data: bytes) -> tuple[str, int]:
    spec = PipelineSpec(compression="zstd", keys=X25519)
    res = store_stream(io.BytesIO(data), storage, "a.zst.age", spec)
    return res.sha256, res.stored_size


# incompressible: the stored object is about as large as the data
SIZES = {"memory-spool": MEMORY_SPOOL // 2, "file-spool": MEMORY_SPOOL * 2 + 12345}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_an_intact_artifact_is_read_once(tmp_path: Path, size: int) -> None:
    storage = CountingStorage(tmp_path / "repo")
    data = os.urandom(size)
    sha, stored = _store(storage, data)
    out = io.BytesIO()
    storage.served = 0
    res = decode_to(
        storage, "a.zst.age", out, X25519,
        expected_sha256=sha, expected_size=stored, compression="zstd",
    )  # fmt: skip
    assert out.getvalue() == data and res.sha256 == sha
    assert storage.served == stored, (
        f"the repository served {storage.served} bytes for a {stored}-byte object"
    )


def test_without_the_size_the_object_is_still_read_once(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path / "repo")
    data = os.urandom(SIZES["file-spool"])
    sha, stored = _store(storage, data)
    storage.served = 0
    out = io.BytesIO()
    decode_to(storage, "a.zst.age", out, X25519, expected_sha256=sha)
    assert out.getvalue() == data and storage.served == stored


class ChangesAfterFirstRead(CountingStorage):
    """Someone flips a byte of the stored file in place after the first read ends."""

    def after_read(self) -> None:
        if self.closed_reads == 1:
            path = self.path("a.zst.age")
            with open(path, "r+b") as fh:
                fh.seek(path.stat().st_size // 2)
                byte = fh.read(1)
                fh.seek(-1, os.SEEK_CUR)
                fh.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_the_bytes_decoded_are_the_bytes_hashed(tmp_path: Path, size: int) -> None:
    """The object changes after it was hashed: the restore still gets the bytes
    that matched the manifest (from the spool), none of the changed ones."""
    storage = ChangesAfterFirstRead(tmp_path / "repo")
    data = os.urandom(size)
    sha, stored = _store(storage, data)
    out = io.BytesIO()
    decode_to(
        storage, "a.zst.age", out, X25519,
        expected_sha256=sha, expected_size=stored, compression="zstd",
    )  # fmt: skip
    assert out.getvalue() == data
    # the stored file did change (the test provokes what it says)
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        decode_to(storage, "a.zst.age", io.BytesIO(), X25519, expected_sha256=sha)


def test_the_spool_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file spool has no name in TMPDIR (O_TMPFILE), during and after, also on a mismatch."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    storage = LocalStorage(tmp_path / "repo")
    data = os.urandom(SIZES["file-spool"])
    sha, stored = _store(storage, data)
    seen: list[list[str]] = []

    class Peek(io.BytesIO):
        def write(self, b: bytes) -> int:  # type: ignore[override]
            seen.append(os.listdir(scratch))
            return super().write(b)

    out = Peek()
    decode_to(storage, "a.zst.age", out, X25519, expected_sha256=sha, expected_size=stored)
    assert out.getvalue() == data and seen and all(names == [] for names in seen)
    with pytest.raises(VerificationError):
        decode_to(storage, "a.zst.age", out, X25519, expected_sha256="0" * 64)
    assert os.listdir(scratch) == []
