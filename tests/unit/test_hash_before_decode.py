"""Nothing is decoded from bytes that do not match the manifest (design invariant 4).

A later check (the digest of what was read, once decoding ends) raises the
same "sha256 mismatch" message, so asserting the message is not enough: the
sink must have received *nothing*. The nastiest case is a stored file
swapped for another valid artifact (same keys, other content): it decodes
cleanly to the end, so only a hash taken *before* decoding keeps its bytes
away from pg_restore, tar or a Qdrant upload.

Checked against the bug it guards (issue 18): with the pre-decode hash
turned off, every case here fails (the sink receives bytes).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from seawall.errors import VerificationError
from seawall.pipeline import KeyRing, PipelineSpec, decode_to, store_stream
from seawall.pipeline.keys import generate_identity
from seawall.storage.local import LocalStorage

SECRET, PUBLIC = generate_identity()
X25519 = KeyRing.build(recipients=[PUBLIC], identity=SECRET)
PASSPHRASE = KeyRing.build(key="correct horse battery staple")


class RecordingSink:
    def __init__(self) -> None:
        self.writes = 0
        self.size = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        self.size += len(data)
        return len(data)


def _store(storage: LocalStorage, key: str, data: bytes, keys: KeyRing | None, comp: str) -> str:
    spec = PipelineSpec(compression=comp, keys=keys, scrypt_work_factor=10)
    return store_stream(io.BytesIO(data), storage, key, spec).sha256


@pytest.mark.parametrize(
    ("keys", "comp"),
    [(None, "zstd"), (None, "none"), (X25519, "zstd"), (PASSPHRASE, "gzip")],
    ids=["zstd", "plain", "x25519", "scrypt"],
)
@pytest.mark.parametrize("tamper", ["swapped-for-valid", "last-byte", "first-payload-byte"])
def test_mismatching_stored_bytes_reach_no_sink(
    tmp_path: Path, keys: KeyRing | None, comp: str, tamper: str
) -> None:
    storage = LocalStorage(tmp_path)
    data = os.urandom(200_000) + b"a" * 2_000_000  # several chunks, some compressible
    sha = _store(storage, "a.bin", data, keys, comp)
    path = storage.path("a.bin")
    stored = bytearray(path.read_bytes())
    if tamper == "swapped-for-valid":
        # another artifact made the same way: decodes cleanly, to other bytes
        _store(storage, "b.bin", data[::-1], keys, comp)
        stored = bytearray(storage.path("b.bin").read_bytes())
    elif tamper == "last-byte":
        stored[-1] ^= 0x01
    else:
        stored[len(stored) // 2] ^= 0x01
    path.write_bytes(bytes(stored))
    sink = RecordingSink()
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        decode_to(storage, "a.bin", sink, keys, expected_sha256=sha, compression=comp)
    assert sink.writes == 0 and sink.size == 0, (
        f"{sink.size} decoded bytes reached the sink before the stored sha256 was checked"
    )


def test_matching_bytes_do_reach_the_sink(tmp_path: Path) -> None:
    """The control: the same recording sink sees an intact artifact."""
    storage = LocalStorage(tmp_path)
    sha = _store(storage, "a.bin", b"hello" * 1000, X25519, "zstd")
    sink = RecordingSink()
    decode_to(storage, "a.bin", sink, X25519, expected_sha256=sha, compression="zstd")
    assert sink.size == 5000
