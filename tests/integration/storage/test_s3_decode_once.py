"""Restore from S3 downloads each object once, and a flipped byte reaches no sink (issue 14).

Both ways ``decode_to`` reads: into a spool before decoding into a stream,
and decoding while downloading into a hidden file named only once the
sha256 matched (``StagedFile``, ADR 0016 addendum).

Against a real SeaweedFS. The GetObject requests are counted with a
botocore hook on seawall's own client: the pre-pass ``decode_to`` made two
(one to hash, one to decode), so ``test_an_intact_object_is_downloaded_once``
failed before the spool.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from seawall.errors import VerificationError
from seawall.pipeline import KeyRing, PipelineSpec, decode_to, store_stream
from seawall.pipeline.keys import generate_identity
from seawall.pipeline.spool import MEMORY_SPOOL
from seawall.pipeline.staged import StagedFile
from seawall.storage.s3 import RetryPolicy, S3Storage
from tests.integration.storage.conftest import new_bucket
from tests.support.s3server import S3Server

SECRET, PUBLIC = generate_identity()
KEYS = KeyRing.build(recipients=[PUBLIC], identity=SECRET)
MIB = 1 << 20
SIZES = {"memory-spool": MEMORY_SPOOL // 2, "file-spool": 2 * MEMORY_SPOOL + 4321}


def _storage(server: S3Server) -> S3Storage:
    return S3Storage(
        f"s3://{new_bucket(server)}/repo",
        endpoint_url=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        part_size=5 * MIB,
        retry=RetryPolicy(deadline=10.0),
    )


def _gets(storage: S3Storage) -> list[str]:
    calls: list[str] = []
    storage.client.meta.events.register(
        "before-call.s3.GetObject", lambda model, **_: calls.append(model.name)
    )
    return calls


class RecordingSink:
    size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_an_intact_object_is_downloaded_once(s3_server: S3Server, size: int) -> None:
    storage = _storage(s3_server)
    data = os.urandom(size)
    spec = PipelineSpec(compression="zstd", keys=KEYS)
    res = store_stream(io.BytesIO(data), storage, "a.zst.age", spec)
    gets = _gets(storage)
    out = io.BytesIO()
    decode_to(
        storage, "a.zst.age", out, KEYS,
        expected_sha256=res.sha256, expected_size=res.stored_size, compression="zstd",
    )  # fmt: skip
    assert out.getvalue() == data
    assert gets == ["GetObject"], f"{len(gets)} GetObject requests for one restore"


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_reaches_no_sink(s3_server: S3Server, size: int, where: str) -> None:
    """The object in the bucket replaced by itself with one bit flipped (same
    size): refused as a sha256 mismatch before the sink sees a byte."""
    storage = _storage(s3_server)
    data = os.urandom(size // 2) + b"z" * (size // 2)
    spec = PipelineSpec(compression="zstd", keys=KEYS)
    res = store_stream(io.BytesIO(data), storage, "a.zst.age", spec)
    stored = bytearray(storage.read_bytes("a.zst.age"))
    pos = {"first": 200, "middle": len(stored) // 2, "last": len(stored) - 1}[where]
    stored[pos] ^= 0x01
    admin = s3_server.client()
    admin.put_object(Bucket=storage.bucket, Key="repo/a.zst.age", Body=bytes(stored))
    sink = RecordingSink()
    with pytest.raises(VerificationError, match="sha256 mismatch") as err:
        decode_to(
            storage, "a.zst.age", sink, KEYS,
            expected_sha256=res.sha256, expected_size=res.stored_size, compression="zstd",
        )  # fmt: skip
    assert err.value.exit_code == 3
    assert sink.size == 0, f"{sink.size} bytes of a tampered object reached the sink"


def _flipped(server: S3Server, storage: S3Storage, where: str) -> None:
    stored = bytearray(storage.read_bytes("a.zst.age"))
    pos = {"first": 0, "middle": len(stored) // 2, "last": len(stored) - 1}[where]
    stored[pos] ^= 0x01
    server.client().put_object(Bucket=storage.bucket, Key="repo/a.zst.age", Body=bytes(stored))


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_decoding_into_a_file_is_one_get_and_no_spool(
    s3_server: S3Server, size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file destination (ADR 0016 addendum): decoded while downloaded, one
    GetObject, no spool (TMPDIR unusable), the file named only at commit."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-dir"))
    storage = _storage(s3_server)
    data = os.urandom(size)
    res = store_stream(io.BytesIO(data), storage, "a.zst.age", PipelineSpec(keys=KEYS))
    gets = _gets(storage)
    dest = tmp_path / "dump"
    with StagedFile(dest, len(data)) as staged:
        decode_to(
            storage, "a.zst.age", staged, KEYS,
            expected_sha256=res.sha256, expected_size=res.stored_size, compression="zstd",
        )  # fmt: skip
        assert not dest.exists()
        staged.commit()
    assert dest.read_bytes() == data
    assert gets == ["GetObject"], f"{len(gets)} GetObject requests for one restore"


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_leaves_no_decoded_file(
    s3_server: S3Server, size: int, where: str, tmp_path: Path
) -> None:
    storage = _storage(s3_server)
    data = os.urandom(size // 2) + b"z" * (size // 2)
    res = store_stream(io.BytesIO(data), storage, "a.zst.age", PipelineSpec(keys=KEYS))
    _flipped(s3_server, storage, where)
    out = tmp_path / "out"
    out.mkdir()
    with StagedFile(out / "dump") as staged:
        with pytest.raises(VerificationError, match="sha256 mismatch") as err:
            decode_to(
                storage, "a.zst.age", staged, KEYS,
                expected_sha256=res.sha256, expected_size=res.stored_size, compression="zstd",
            )  # fmt: skip
        assert err.value.exit_code == 3 and not staged.checked
    assert os.listdir(out) == [], "bytes of a tampered object were left behind"
