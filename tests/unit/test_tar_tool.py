"""The ``tar -x`` wrapper (postgres/tools/tar.py) with the real tar binary:
a stream written to it lands in the directory; a stream that is not a tar,
or a destination that is not there, comes back as tar's exit status and its
own words, for the caller to put into its error."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

from seawall.postgres.tools.tar import extract_tar


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_streamed_tar_is_unpacked(tmp_path: Path) -> None:
    stream = tar_bytes({"backup_label": b"START WAL LOCATION", "base/1/1259": b"\x01" * 70000})
    tar = extract_tar(tmp_path)
    for pos in range(0, len(stream), 4096):  # written piecewise, as decode_to does
        tar.stdin.write(stream[pos : pos + 4096])
    assert tar.finish() == (0, "")
    assert (tmp_path / "backup_label").read_bytes() == b"START WAL LOCATION"
    assert (tmp_path / "base/1/1259").read_bytes() == b"\x01" * 70000


def test_garbage_is_reported_with_tars_own_words(tmp_path: Path) -> None:
    tar = extract_tar(tmp_path)
    with contextlib.suppress(BrokenPipeError):  # tar may give up before reading it all
        tar.stdin.write(b"this is not a tar archive\n" * 40000)
    rc, err = tar.finish()
    assert rc != 0
    assert "does not look like a tar archive" in err


def test_a_missing_destination_is_reported(tmp_path: Path) -> None:
    tar = extract_tar(tmp_path / "not-there")
    with contextlib.suppress(BrokenPipeError):
        tar.stdin.write(tar_bytes({"f": b"x"}))
    rc, err = tar.finish()
    assert rc != 0
    assert "not-there" in err
