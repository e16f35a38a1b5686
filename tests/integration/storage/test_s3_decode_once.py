"""Restore from S3 downloads each object once, and a flipped byte reaches no sink (issue 14).

Against a real SeaweedFS. The GetObject requests are counted with a
botocore hook on seawall's own client: the pre-pass ``decode_to`` made two
(one to hash, one to decode), so ``test_an_intact_object_is_downloaded_once``
failed before the spool.
"""

from __future__ import annotations

import io
import os

import pytest

from seawall.errors import VerificationError
from seawall.pipeline import KeyRing, PipelineSpec, decode_to, store_stream
from seawall.pipeline.keys import generate_identity
from seawall.pipeline.spool import MEMORY_SPOOL
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
