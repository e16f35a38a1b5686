"""Archive structure checks on hostile and damaged tars, and URL segment
encoding of untrusted names (pure code: no server needed)."""

from __future__ import annotations

import io
import json
import tarfile
from urllib.parse import unquote

import pytest
from hypothesis import given, strategies as st

from seawall.errors import VerificationError
from seawall.qdrant.archive import inspect_archive
from seawall.qdrant.client import url_path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _segment_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as seg:
        _add(seg, "snapshot/files/segment.json", b"{}")
        _add(seg, "snapshot/files/vector_storage/vectors", b"\0" * 4096)
    return buf.getvalue()


def collection_tar(*, extra: list[tuple[str, bytes]] | None = None, local: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "config.json", json.dumps({"params": {"shard_number": 1}}).encode())
        _add(tar, "version.info", b"1.19.0")
        _add(tar, "0/replica_state.json", json.dumps({"is_local": local}).encode())
        if local:
            _add(tar, "0/segments/abc.tar", _segment_tar())
        for name, data in extra or []:
            _add(tar, name, data)
    return buf.getvalue()


def test_a_well_formed_archive_passes() -> None:
    report = inspect_archive(io.BytesIO(collection_tar()), "collection")
    assert report.problems() == []
    assert report.version == "1.19.0" and report.shards[0].segments == 1
    assert report.shards[0].segment_files == 2


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "0/../../x", "a\\b"])
def test_hostile_member_names_are_refused(name: str) -> None:
    data = collection_tar(extra=[(name, b"x")])
    with pytest.raises(VerificationError, match="unsafe member name"):
        inspect_archive(io.BytesIO(data), "collection")


def test_truncated_archive_is_refused() -> None:
    data = collection_tar()
    with pytest.raises(VerificationError):
        inspect_archive(io.BytesIO(data[: len(data) // 2]), "collection")


def test_corrupt_nested_segment_is_refused() -> None:
    seg = bytearray(_segment_tar())
    seg[:512] = b"\xff" * 512  # first header block destroyed
    data = collection_tar(extra=[("0/segments/bad.tar", bytes(seg))])
    with pytest.raises(VerificationError, match="segment"):
        inspect_archive(io.BytesIO(data), "collection")


def test_shard_without_data_is_a_problem() -> None:
    report = inspect_archive(io.BytesIO(collection_tar(local=False)), "collection")
    assert any("does not hold this shard" in p for p in report.problems())


def test_not_a_tar() -> None:
    with pytest.raises(VerificationError, match=r"not a readable tar|empty|truncated"):
        inspect_archive(io.BytesIO(b"<html>proxy error</html>" * 100), "collection")


@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4))
def test_url_path_keeps_each_name_one_segment(names: list[str]) -> None:
    path = url_path("collections", *names)
    parts = path.split("/")
    assert parts[0] == "" and parts[1] == "collections"
    assert len(parts) == 2 + len(names)  # no name adds or removes a segment
    assert [unquote(p) for p in parts[2:]] == names
    assert all(p not in (".", "..") for p in parts[2:])


@pytest.mark.parametrize("name", [".", "..", "...", "../..", "a/../b"])
def test_dot_names_survive_httpx_normalisation(name: str) -> None:
    import httpx

    request = httpx.Client(base_url="http://127.0.0.1:1").build_request(
        "GET", url_path("collections", name, "snapshots")
    )
    raw = request.url.raw_path.decode()
    assert raw.startswith("/collections/") and raw.endswith("/snapshots")
    assert unquote(raw.split("/")[2]) == name
