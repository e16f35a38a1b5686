"""The streaming tar checker used on base backups: picks members, rejects damage."""

from __future__ import annotations

import io
import tarfile

import pytest

from seawall.pipeline.tarscan import TarScanner, TarStructureError, parse_backup_label


def make_tar(members: dict[str, bytes], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


LABEL = b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n"


@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 1 << 20])
def test_captures_members_in_any_chunking(chunk: int) -> None:
    data = make_tar({"base/1/1234": b"x" * 70000, "backup_label": LABEL, "backup_manifest": b"{}"})
    scanner = TarScanner()
    for i in range(0, len(data), chunk):
        scanner.feed(data[i : i + chunk])
    scanner.finish()
    assert scanner.members == 3
    assert scanner.captured["backup_label"] == LABEL
    assert scanner.captured["backup_manifest"] == b"{}"
    assert parse_backup_label(LABEL.decode())["START TIMELINE"] == "1"


def test_truncated_archive_is_rejected() -> None:
    data = make_tar({"a": b"y" * 5000, "backup_label": LABEL})
    content_end = 512 + 5120 + 512 + 512  # two members, before the end-of-archive blocks
    for cut in (content_end, content_end - 100, 700, 512 + 100):
        scanner = TarScanner()
        scanner.feed(data[:cut])
        with pytest.raises(TarStructureError):
            scanner.finish()


def test_damaged_header_is_rejected() -> None:
    data = bytearray(make_tar({"a": b"z" * 100, "b": b"w" * 100}))
    data[1024 + 10] ^= 0x20  # a byte of the second member's name
    with pytest.raises(TarStructureError, match="checksum"):
        TarScanner().feed(bytes(data))
