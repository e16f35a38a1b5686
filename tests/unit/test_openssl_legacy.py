"""Legacy `openssl enc -aes-256-cbc -pbkdf2` backups decrypt through seawall.

Every ciphertext here is made by the real `openssl` CLI, the way the
operators' old scripts made them. The key reaches openssl through the
environment (`-pass env:`) or a file (`-pass file:`), never argv.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from seawall.pipeline.openssl_legacy import (
    LegacyDecryptError,
    OpenSSLDecryptReader,
    decrypt_openssl_io,
    is_openssl_salted,
)

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is needed")

KEY = "operators' ENCRYPTION_KEY: s3cr3t ✓"
_ENV_VAR = "SEAWALL_TEST_LEGACY_KEY"


def _openssl_enc(data: bytes, *extra: str, pass_arg: str = f"env:{_ENV_VAR}") -> bytes:
    assert OPENSSL is not None
    env = {**os.environ, _ENV_VAR: KEY}
    proc = subprocess.run(
        [OPENSSL, "enc", "-aes-256-cbc", "-pbkdf2", "-salt", "-pass", pass_arg, *extra],
        input=data,
        capture_output=True,
        env=env,
        check=True,
    )
    return proc.stdout


def _openssl_enc_fixed_salt(data: bytes, salt_hex: str) -> bytes:
    """openssl with `-S` (a given salt) omits the header; add it as it would be written."""
    return b"Salted__" + bytes.fromhex(salt_hex) + _openssl_enc(data, "-S", salt_hex)


def _dec(blob: bytes, key: str = KEY, iterations: int = 10000, digest: str = "sha256") -> bytes:
    out = io.BytesIO()
    decrypt_openssl_io(io.BytesIO(blob), out, key, iterations, digest)
    return out.getvalue()


def _sql(rows: int) -> bytes:
    lines = [b"-- PostgreSQL database dump\n", b"COPY public.items (id, name, doc) FROM stdin;\n"]
    lines += [f'{i}\titem-{i}\t{{"k": {i * 7}}}\n'.encode() for i in range(rows)]
    lines.append(b"\\.\n")
    return b"".join(lines)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 65536, 65537, 1024 * 1024 + 3])
def test_openssl_cli_files_of_various_sizes(size: int) -> None:
    data = os.urandom(size)
    blob = _openssl_enc(data)
    assert is_openssl_salted(blob[:16])
    assert len(blob) == 16 + (size // 16 + 1) * 16  # header + always-padded CBC
    assert _dec(blob) == data


def test_operators_gzip_pipeline(tmp_path: Path) -> None:
    """`gzip | openssl enc ...` as the old scripts ran it, file name and all."""
    assert OPENSSL is not None
    sql = _sql(50_000)
    dump = tmp_path / "aidb-full-20240317-020001.sql"
    dump.write_bytes(sql)
    artifact = tmp_path / "aidb-full-20240317-020001.sql.gz.enc"
    subprocess.run(
        f'gzip -c "{dump}" | "{OPENSSL}" enc -aes-256-cbc -pbkdf2 -salt '
        f'-pass env:{_ENV_VAR} > "{artifact}"',
        shell=True,
        check=True,
        env={**os.environ, _ENV_VAR: KEY},
    )
    with artifact.open("rb") as f:
        assert is_openssl_salted(f.read(8))
        f.seek(0)
        reader = OpenSSLDecryptReader(f, KEY)
        with gzip.GzipFile(fileobj=reader, mode="rb") as gz:
            restored = gz.read()
    assert restored == sql


def test_pass_file_and_small_reads(tmp_path: Path) -> None:
    keyfile = tmp_path / "key"
    keyfile.write_text(KEY + "\n")  # openssl reads the first line only
    data = _sql(3000)
    blob = _openssl_enc(data, pass_arg=f"file:{keyfile}")
    reader = OpenSSLDecryptReader(io.BytesIO(blob), KEY)
    got = bytearray()
    buf = bytearray(777)
    while n := reader.readinto(buf):
        got += buf[:n]
    assert bytes(got) == data
    assert reader.read(10) == b""


def test_iter_and_md_parameters() -> None:
    data = _sql(500)
    blob = _openssl_enc(data, "-iter", "100000", "-md", "sha512")
    assert _dec(blob, iterations=100000, digest="sha512") == data
    with pytest.raises(LegacyDecryptError):
        _dec(blob)  # default -iter/-md do not open it


def test_wrong_key_fails_clearly() -> None:
    # A fixed salt keeps this deterministic: a wrong key passes the PKCS#7
    # check by chance ~1/256 of the time, and for this salt it does not.
    data = _sql(1000)
    blob = _openssl_enc_fixed_salt(data, "0011223344556677")
    assert _dec(blob) == data
    with pytest.raises(LegacyDecryptError, match="wrong ENCRYPTION_KEY or corrupt file") as exc:
        _dec(blob, "not the key")
    assert KEY not in str(exc.value)
    assert "not the key" not in str(exc.value)


def test_truncated_file_fails() -> None:
    data = _sql(2000)
    blob = _openssl_enc(data)
    with pytest.raises(LegacyDecryptError, match="truncated"):
        _dec(blob[:-5])
    with pytest.raises(LegacyDecryptError, match="bad padding"):
        _dec(blob[:-16])  # at a block boundary: only the padding check can tell
    with pytest.raises(LegacyDecryptError, match="no data"):
        _dec(blob[:16])
    with pytest.raises(LegacyDecryptError, match="salt missing"):
        _dec(blob[:12])


def test_flipped_last_block_fails() -> None:
    blob = bytearray(_openssl_enc_fixed_salt(_sql(100), "8899aabbccddeeff"))
    blob[-1] ^= 0x40
    with pytest.raises(LegacyDecryptError):
        _dec(bytes(blob))


@pytest.mark.parametrize("blob", [b"", b"age-encryption.org/v1\n", b"\x1f\x8b\x08\x00" * 10])
def test_foreign_input(blob: bytes) -> None:
    assert not is_openssl_salted(blob)
    with pytest.raises(LegacyDecryptError, match="Salted__"):
        _dec(blob)


def test_argument_validation() -> None:
    with pytest.raises(ValueError):
        OpenSSLDecryptReader(io.BytesIO(b"Salted__12345678"), "")
    with pytest.raises(ValueError, match="-md"):
        OpenSSLDecryptReader(io.BytesIO(b"Salted__12345678"), KEY, digest="md5")
