"""Pipeline round trips for every compression × encryption, and tamper detection."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from seawall.errors import DecryptionError, VerificationError
from seawall.pipeline import KeyRing, PipelineSpec, decode_to, store_stream
from seawall.pipeline.keys import generate_identity
from seawall.storage.local import LocalStorage

SECRET, PUBLIC = generate_identity()
OTHER_SECRET, _ = generate_identity()
X25519 = KeyRing.build(recipients=[PUBLIC], identity=SECRET)
PASSPHRASE = KeyRing.build(key="correct horse battery staple")


def spec(compression: str, keys: KeyRing | None) -> PipelineSpec:
    return PipelineSpec(compression=compression, keys=keys, scrypt_work_factor=10)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=300_000),
    compression=st.sampled_from(["zstd", "gzip", "none"]),
    keys=st.sampled_from([None, X25519, PASSPHRASE]),
)
def test_round_trip(tmp_path: Path, data: bytes, compression: str, keys: KeyRing | None) -> None:
    storage = LocalStorage(tmp_path)
    s = spec(compression, keys)
    key = f"obj{s.suffix()}"
    res = store_stream(io.BytesIO(data), storage, key, s)
    assert res.raw_size == len(data)
    out = io.BytesIO()
    decoded = decode_to(
        storage, key, out, keys, expected_sha256=res.sha256, compression=compression
    )
    assert out.getvalue() == data
    assert decoded.raw_size == len(data)
    # Auto-detection (foreign files, no manifest) gives the same bytes, unless
    # uncompressed data itself starts with a format's magic (ambiguous by
    # nature, encrypted or not: the decrypted bytes are sniffed for zstd/gzip
    # the same way; with the manifest's compression, above, it is exact).
    magics = (b"Salted__", b"age-encryption.org/v1\n", b"\x28\xb5\x2f\xfd", b"\x1f\x8b")
    if compression != "none" or not data.startswith(magics):
        out2 = io.BytesIO()
        decode_to(storage, key, out2, keys)
        assert out2.getvalue() == data


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("keys", [None, X25519, PASSPHRASE], ids=["plain", "x25519", "scrypt"])
def test_every_flipped_byte_is_caught(
    tmp_path: Path, compression: str, keys: KeyRing | None
) -> None:
    storage = LocalStorage(tmp_path)
    s = spec(compression, keys)
    data = bytes(range(256)) * 400
    res = store_stream(io.BytesIO(data), storage, "obj", s)
    path = storage.path("obj")
    original = path.read_bytes()
    for pos in (0, len(original) // 3, len(original) - 1):
        tampered = bytearray(original)
        tampered[pos] ^= 0x01
        path.write_bytes(bytes(tampered))
        with pytest.raises(VerificationError, match="sha256 mismatch"):
            decode_to(storage, "obj", io.BytesIO(), keys, expected_sha256=res.sha256)
    path.write_bytes(original)


def test_wrong_key_is_a_decryption_error(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    res = store_stream(io.BytesIO(b"data" * 100), storage, "o", spec("zstd", X25519))
    with pytest.raises(DecryptionError, match="none of the configured identities"):
        decode_to(
            storage,
            "o",
            io.BytesIO(),
            KeyRing.build(identity=OTHER_SECRET),
            expected_sha256=res.sha256,
        )
    with pytest.raises(DecryptionError, match="no identity is configured"):
        decode_to(storage, "o", io.BytesIO(), None, expected_sha256=res.sha256)
    # After a key rotation both identities are configured: the old backup restores.
    both = KeyRing.build(identity=OTHER_SECRET + "\n" + SECRET)
    out = io.BytesIO()
    decode_to(storage, "o", out, both, expected_sha256=res.sha256)
    assert out.getvalue() == b"data" * 100


def test_wrong_passphrase(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_stream(io.BytesIO(b"abc" * 10), storage, "o", spec("gzip", PASSPHRASE))
    with pytest.raises(DecryptionError, match="wrong passphrase"):
        decode_to(storage, "o", io.BytesIO(), KeyRing.build(key="not it"))


def test_producer_failure_before_commit_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    def producer_died() -> None:
        raise RuntimeError("pg_dump exited with status 1")

    with pytest.raises(RuntimeError):
        store_stream(
            io.BytesIO(b"x" * 10_000),
            storage,
            "a/dump",
            spec("zstd", X25519),
            before_commit=producer_died,
        )
    assert list(storage.list("")) == [] and list(storage.list_partials("")) == []


def test_secrets_not_in_repr() -> None:
    assert SECRET not in repr(X25519)
    assert "correct horse" not in repr(PASSPHRASE)


def test_source_that_differs_from_its_earlier_hash_is_not_stored(tmp_path: Path) -> None:
    """wal-push names a segment by a hash taken first; if the bytes streamed
    later differ (the file changed under us), nothing may be committed."""
    import hashlib

    storage = LocalStorage(tmp_path)
    original = b"segment" * 10_000
    changed = bytearray(original)
    changed[5_000] ^= 1
    with pytest.raises(VerificationError, match="source changed"):
        store_stream(
            io.BytesIO(bytes(changed)),
            storage,
            "wal/seg.zst",
            spec("zstd", X25519),
            expected_raw_sha256=hashlib.sha256(original).hexdigest(),
        )
    assert list(storage.list("")) == [] and list(storage.list_partials("")) == []
    res = store_stream(
        io.BytesIO(original),
        storage,
        "wal/seg.zst",
        spec("zstd", X25519),
        expected_raw_sha256=hashlib.sha256(original).hexdigest(),
    )
    assert res.raw_size == len(original)
