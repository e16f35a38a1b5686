"""The identity-free ("stored") verification level of one artifact.

Artifacts are written by the real pipeline (age X25519, our encryptor) and
then damaged on disk; where a check could only fire if the manifest were
forged too (the sha256 covers every byte), the manifest is forged as well,
so each check is shown to catch what it claims on its own.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from seawall.catalog.models import Artifact, StreamCheck
from seawall.catalog.runs import artifact_from_store
from seawall.errors import VerificationError
from seawall.pipeline.keys import KeyRing, fingerprint, generate_identity
from seawall.pipeline.store import PipelineSpec, store_stream
from seawall.pipeline.stored import check_stored, identity_free
from seawall.storage.local import LocalStorage

KEY = "b/art.age"
PASSPHRASE = "correct horse battery staple 42"


@pytest.fixture
def stored(tmp_path: Path) -> tuple[LocalStorage, Artifact, KeyRing, Path]:
    _, public = generate_identity()
    keys = KeyRing(recipients=(public,))
    storage = LocalStorage(tmp_path)
    data = os.urandom(200 * 1024)  # three full 64 KiB chunks and a partial one
    spec = PipelineSpec(compression="none", keys=keys)
    res = store_stream(io.BytesIO(data), storage, KEY, spec)
    art = artifact_from_store("art.age", "dump", res)
    return storage, art, keys, tmp_path / KEY


def forge(art: Artifact, path: Path) -> Artifact:
    """The manifest entry rewritten to match the damaged file's sha256 and size."""
    raw = path.read_bytes()
    return art.model_copy(
        update={"sha256": hashlib.sha256(raw).hexdigest(), "stored_size": len(raw)}
    )


def test_intact_artifact_passes_without_identity(
    stored: tuple[LocalStorage, Artifact, KeyRing, Path],
) -> None:
    storage, art, keys, _ = stored
    assert identity_free([art], keys)
    assert not identity_free([art], KeyRing(identities=("AGE-SECRET-KEY-1X",)))
    checks = "\n".join(check_stored(storage, KEY, art, keys, "b"))
    assert "sha256 and size" in checks
    assert "1 X25519 stanza(s) for 1 recorded recipient(s), the configured" in checks
    assert "payload framing ok (4 chunks)" in checks
    assert "no stream structure recorded" in checks


def test_flipped_byte_is_caught(stored: tuple[LocalStorage, Artifact, KeyRing, Path]) -> None:
    storage, art, keys, path = stored
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x80
    path.write_bytes(bytes(raw))
    with pytest.raises(VerificationError, match="sha256 mismatch") as err:
        check_stored(storage, KEY, art, keys, "b")
    assert err.value.exit_code == 3


def test_truncation_inside_a_tag_is_caught_by_the_framing(
    stored: tuple[LocalStorage, Artifact, KeyRing, Path],
) -> None:
    storage, art, keys, path = stored
    raw = path.read_bytes()
    header_end = raw.index(b"\n---") + 1
    header_end = raw.index(b"\n", header_end) + 1
    path.write_bytes(raw[: header_end + 16 + 3 * (65536 + 16) + 8])
    with pytest.raises(VerificationError, match="not a whole number of sealed chunks"):
        check_stored(storage, KEY, forge(art, path), keys, "b")


def test_header_damage_and_stanza_count(
    stored: tuple[LocalStorage, Artifact, KeyRing, Path],
) -> None:
    storage, art, keys, path = stored
    two = art.model_copy(deep=True)
    assert two.encryption is not None
    two.encryption.recipient_fingerprints.append(fingerprint("age1other"))
    with pytest.raises(VerificationError, match="1 recipient stanza"):
        check_stored(storage, KEY, two, keys, "b")
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"-> X25519 ", b"-> X25518 ", 1))
    with pytest.raises(VerificationError, match="age header is not what was written"):
        check_stored(storage, KEY, forge(art, path), keys, "b")


def test_recorded_stream_structure_is_reported_and_enforced(
    stored: tuple[LocalStorage, Artifact, KeyRing, Path],
) -> None:
    storage, art, keys, _ = stored
    good = art.model_copy(update={"stream_check": StreamCheck(format="tar", ok=True, detail="9")})
    assert any(
        "tar structure checked while writing: 9" in c
        for c in check_stored(storage, KEY, good, keys, "b")
    )
    bad = art.model_copy(
        update={"stream_check": StreamCheck(format="tar", ok=False, detail="bad header checksum")}
    )
    with pytest.raises(VerificationError, match="not a well-formed tar when it was written"):
        check_stored(storage, KEY, bad, keys, "b")
