"""The failures Qdrant backups meet in production, provoked on the test server
(skipped against a real Qdrant: faults cannot be injected there)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from seawall.app.backup import qdrant_backup as backup
from seawall.errors import (
    BackupFailedError,
    NotFoundError,
    PartialFailureError,
    SeawallError,
    SourceUnavailableError,
    VerificationError,
)
from seawall.qdrant.client import QdrantClient, QdrantError
from seawall.qdrant.restore import restore
from seawall.qdrant.select import resolve
from seawall.qdrant.snapshots import (
    Prefetcher,
    SnapshotDownload,
    SnapshotScope,
    create_snapshot,
    delete_snapshot,
)
from tests.qdrant_server import QdrantTestServer
from tests.qdrant_server.fixtures import require_faults

from .conftest import MakeCtx

DIM = 4


@pytest.fixture
def server(qdrant_server: Any) -> QdrantTestServer:
    require_faults(qdrant_server)
    return qdrant_server  # type: ignore[no-any-return]


def artifacts(qdir: Path) -> list[Path]:
    return [p for p in qdir.rglob("*.tar*") if p.is_file()]


def only_failed_manifest(ctx: Any, collection: str) -> str:
    manifests = ctx.catalog.scan("qdrant", None, collection).manifests
    assert [m.status for m in manifests] == ["failed"]
    assert manifests[0].artifacts == []
    return str(manifests[0].error)


def test_download_cut_mid_stream_resumes_with_range(
    server: QdrantTestServer, make_ctx: MakeCtx
) -> None:
    server.create_collection("cut", DIM, points=100, seed=1)
    server.faults.cut_download(after_bytes=5_000_000, times=2)
    ctx = make_ctx(server)
    m = backup(ctx, ["cut"]).results[0].manifest
    assert m is not None and m.ok and m.verification is not None and m.verification.ok
    assert server.faults.fired["cut_download"] == 2
    assert getattr(m.artifacts[0], "download_resumes", 0) == 2
    downloads = [r for r in server.requests if r[0] == "GET" and "/snapshots/" in r[1]]
    assert [status for _m, _p, status in downloads].count(206) == 2
    assert server.all_snapshots() == []


def test_prefetcher_resumes_and_hands_over_a_checksum_error(server: QdrantTestServer) -> None:
    """The download thread used when the pipeline does not prefetch: the
    bytes arrive in order across a resumed connection, and a checksum
    mismatch found in that thread is raised in the reader's."""
    server.create_collection("pf", DIM, points=100, seed=31)
    with QdrantClient(server.url) as client:
        scope = SnapshotScope.collection("pf")
        snap = create_snapshot(client, scope)
        server.faults.cut_download(after_bytes=3_000_000, times=1)
        reader = Prefetcher(SnapshotDownload(client, scope, snap), depth=2)
        try:
            data = b"".join(iter(lambda: reader.read(1 << 20), b""))
        finally:
            reader.close()
        assert len(data) == snap.size and hashlib.sha256(data).hexdigest() == snap.checksum
        assert reader.download.resumes == 1
        wrong = dataclasses.replace(snap, checksum="0" * 64)
        reader = Prefetcher(SnapshotDownload(client, scope, wrong), depth=2)
        try:
            with pytest.raises(VerificationError, match="sha256 mismatch"):
                while reader.read(1 << 20):
                    pass
        finally:
            reader.close()
        delete_snapshot(client, scope, snap.name)


def test_download_cut_every_time_fails_cleanly(
    server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path
) -> None:
    server.create_collection("cutall", DIM, points=50, seed=2)
    server.faults.cut_download(after_bytes=1_000_000, times=None)
    ctx = make_ctx(server)
    run = backup(ctx, ["cutall"])
    with pytest.raises(SourceUnavailableError, match="broke"):
        run.raise_for_status()
    assert artifacts(qdir) == []  # nothing committed, no partial left
    assert not list(qdir.rglob("*.partial*"))
    only_failed_manifest(ctx, "cutall")
    assert server.all_snapshots() == []  # deleted after the failure too


def test_checksum_mismatch_commits_nothing(
    server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path
) -> None:
    server.create_collection("sum", DIM, points=30, seed=3)
    server.faults.wrong_checksum(times=1, collection="sum")
    ctx = make_ctx(server)
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        backup(ctx, ["sum"]).raise_for_status()
    assert server.faults.fired["wrong_checksum"] == 1
    assert artifacts(qdir) == []
    assert "sha256" in only_failed_manifest(ctx, "sum")
    assert server.all_snapshots() == []


def test_server_500_on_create(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    server.create_collection("c500", DIM, points=10, seed=4)
    server.faults.fail_create(500)
    ctx = make_ctx(server)
    with pytest.raises(QdrantError, match=r"HTTP 500.*failed to create snapshot"):
        backup(ctx, ["c500"]).raise_for_status()
    only_failed_manifest(ctx, "c500")


def test_server_disk_full_507(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    server.create_collection("full", DIM, points=10, seed=5)
    server.faults.disk_full_on_create()
    ctx = make_ctx(server)
    with pytest.raises(QdrantError, match=r"ran out of disk space.*507") as info:
        backup(ctx, ["full"]).raise_for_status()
    assert "free space on the Qdrant volume" in str(info.value)


def test_create_timeout_then_snapshot_appears(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    server.create_collection("slow", DIM, points=20, seed=6)
    server.faults.slow_create(delay=2.5, collection="slow")
    server.faults.hostile_snapshot_names(collection="slow")  # junk in the list while polling
    ctx = make_ctx(server, qdrant_timeout=0.7)
    m = backup(ctx, ["slow"]).results[0].manifest
    assert m is not None and m.ok
    assert server.faults.fired["slow_create"] == 1
    assert m.qdrant is not None and m.qdrant.snapshot_name is not None
    assert m.qdrant.snapshot_name.startswith("slow-")  # not one of the hostile entries
    creates = [r for r in server.requests if r[0] == "POST" and r[1].endswith("/snapshots")]
    assert len(creates) == 1  # polled, did not create a second snapshot
    assert [s for s in server.all_snapshots() if s.name.startswith("slow-")] == []


def test_wrong_api_key_and_missing_key(qdrant_server_with_key: Any, make_ctx: MakeCtx) -> None:
    server = qdrant_server_with_key
    server.create_collection("k", DIM, points=5, seed=7)
    wrong = "definitely-wrong-key-123"
    ctx = make_ctx(server, qdrant_api_key=wrong)
    with pytest.raises(SourceUnavailableError, match=r"rejected the API key.*403") as info:
        backup(ctx)
    assert wrong not in str(info.value)
    ctx_none = make_ctx(None, qdrant_url=server.url)
    with pytest.raises(SourceUnavailableError, match=r"rejected the API key.*401"):
        backup(ctx_none)


def test_collection_deleted_between_list_and_backup(
    server: QdrantTestServer, make_ctx: MakeCtx
) -> None:
    # Test-server quirk (reported): delete_after_list deletes the FIRST listed
    # collection whatever name it was armed with, so the vanishing one sorts first.
    server.create_collection("stays", DIM, points=10, seed=8)
    server.create_collection("a-vanishes", DIM, points=10, seed=9)
    server.faults.delete_after_list("a-vanishes")
    ctx = make_ctx(server)
    run = backup(ctx)
    errors = {r.collection: r.error for r in run.results}
    assert errors["stays"] is None
    assert isinstance(errors["a-vanishes"], NotFoundError)
    assert "deleted since it was listed" in str(errors["a-vanishes"])
    with pytest.raises(PartialFailureError) as info:
        run.raise_for_status()
    assert info.value.exit_code == 10


def test_one_failing_collection_does_not_stop_the_others(
    server: QdrantTestServer, make_ctx: MakeCtx
) -> None:
    for i in range(4):
        server.create_collection(f"c{i}", DIM, points=10, seed=i)
    server.faults.fail_create(500, collection="c1")
    ctx = make_ctx(server, qdrant_concurrency=3)
    run = backup(ctx)
    assert [r.collection for r in run.failed] == ["c1"]
    assert sum(1 for r in run.results if r.ok) == 3
    with pytest.raises(PartialFailureError):
        run.raise_for_status()


def test_all_failing_is_exit_1(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    server.create_collection("a", DIM, points=5, seed=1)
    server.create_collection("b", DIM, points=5, seed=2)
    server.faults.fail_create(500, times=None)
    with pytest.raises(BackupFailedError):
        backup(make_ctx(server)).raise_for_status()


def test_hostile_snapshot_name_is_one_url_segment(
    server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path
) -> None:
    server.create_collection("h", DIM, points=15, seed=10)
    server.faults.name_next_snapshot("../../etc/passwd", collection="h")
    ctx = make_ctx(server)
    m = backup(ctx, ["h"]).results[0].manifest
    assert m is not None and m.ok
    assert m.qdrant is not None and m.qdrant.snapshot_name == "../../etc/passwd"
    paths = [r[1] for r in server.requests]
    assert any("..%2F..%2Fetc%2Fpasswd" in p for p in paths)
    assert server.all_snapshots() == []  # and it was deleted through the same encoding
    for p in qdir.rglob("*"):
        assert "passwd" not in p.name


def test_garbage_answer_is_a_clear_error(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    server.create_collection("g", DIM, points=5, seed=11)
    server.faults.garbage(times=1, path_prefix="/collections")
    with pytest.raises(SourceUnavailableError, match="not the Qdrant API"):
        backup(make_ctx(server))


def test_server_not_ready(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    server.ready = False
    with pytest.raises(SourceUnavailableError, match=r"unavailable.*503"):
        backup(make_ctx(server))


def test_connection_refused(make_ctx: MakeCtx) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = make_ctx(None, qdrant_url=f"http://127.0.0.1:{port}")
    with pytest.raises(SourceUnavailableError, match="cannot reach Qdrant") as info:
        backup(ctx)
    assert info.value.exit_code == 5


def test_client_encodes_every_name_as_one_segment(server: QdrantTestServer) -> None:
    with QdrantClient(server.url) as client, pytest.raises(NotFoundError):
        client.collection_info("../collections")  # would be GET /collections unencoded
    # The server records a request after answering it: wait for the record.
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests[-1][1].endswith("..%2Fcollections")


def test_restore_upload_failure_is_reported(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    server.create_collection("up", DIM, points=10, seed=12)
    ctx = make_ctx(server)
    backup(ctx, ["up"]).raise_for_status()
    server.faults.fail_upload(507, collection="up")
    with pytest.raises(QdrantError, match="disk space"):
        restore(ctx, resolve(ctx, "latest"), clean=True)


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_corrupt_artifact_makes_no_upload_request(
    server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path, compression: str
) -> None:
    """The restore decodes while it uploads, but the stored bytes are hashed
    against the manifest first: a corrupt artifact makes no upload request at
    all (issue 18 item 2: the sink receives nothing), and nothing is
    recovered. With compression off, the corruption is only visible to the
    sha256 check."""
    server.create_collection("cut", DIM, points=40, seed=21)
    ctx = make_ctx(server, compression=compression, qdrant_compression=compression)
    backup(ctx, ["cut"]).raise_for_status()
    (art,) = artifacts(qdir)
    _flip_middle_byte(art)
    server.delete_collection("cut")
    with pytest.raises(SeawallError) as info:
        restore(ctx, resolve(ctx, "latest"))
    assert info.value.exit_code == 3, info.value  # VerificationError (docs/exit-codes.md)
    assert "sha256 mismatch" in str(info.value)
    assert not any("upload" in path for _, path, _ in server.requests)
    assert server.uploads == []
    assert "cut" not in server.collection_names()


@pytest.mark.parametrize("tamper", ["flipped-byte", "swapped-for-valid"])
def test_tampered_artifact_writes_no_output_file(
    server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path, tmp_path: Path, tamper: str
) -> None:
    """``restore --output``: bytes that do not match the manifest leave no
    file behind, not even an empty or partial one, and no upload is made.
    "swapped-for-valid" is another backup's intact artifact put in its place:
    it decodes cleanly, so only the sha256 taken before decoding stops it."""
    server.create_collection("out", DIM, points=40, seed=23)
    ctx = make_ctx(server)
    backup(ctx, ["out"]).raise_for_status()
    first = resolve(ctx, "latest")
    time.sleep(1.1)  # backup ids have one-second resolution
    server.create_collection("other", DIM, points=60, seed=25)
    backup(ctx, ["other"]).raise_for_status()
    (art,) = (p for p in artifacts(qdir) if f"/{first.manifest.id}/" in str(p))
    if tamper == "flipped-byte":
        _flip_middle_byte(art)
    else:
        (donor,) = (p for p in artifacts(qdir) if "/other/" in str(p))
        art.write_bytes(donor.read_bytes())
    requests_before = len(server.requests)
    out = tmp_path / "snapshot.out"
    with pytest.raises(SeawallError) as info:
        restore(ctx, first, output=out)
    assert info.value.exit_code == 3, info.value
    assert not out.exists(), "a tampered artifact left an output file"
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    uploads = [p for _, p, _ in server.requests[requests_before:] if "upload" in p]
    assert uploads == []


def test_restore_without_raw_sha256_uses_a_temp_file(
    server: QdrantTestServer, make_ctx: MakeCtx
) -> None:
    """Manifests written before raw sha256s were recorded still restore
    (decoded to a temporary file, checksum computed from it)."""
    server.create_collection("old", DIM, points=30, seed=22)
    ctx = make_ctx(server)
    m = backup(ctx, ["old"]).results[0].manifest
    assert m is not None and m.artifacts[0].raw_sha256
    m.artifacts[0].raw_sha256 = None
    ctx.catalog.write(m)
    server.delete_collection("old")
    assert restore(ctx, resolve(ctx, "latest")).points_count == 30
    assert server.uploads[-1]["checksum"] == server.uploads[-1]["sha256"]


def test_streamed_upload_has_a_content_length(server: QdrantTestServer, make_ctx: MakeCtx) -> None:
    """The decoded stream goes out with a Content-Length (its size is in the
    manifest), not chunked: proxies and servers that refuse chunked uploads
    keep working, and a short body can never look complete."""
    server.create_collection("len", DIM, points=30, seed=23)
    ctx = make_ctx(server)
    m = backup(ctx, ["len"]).results[0].manifest
    assert m is not None
    restore(ctx, resolve(ctx, "latest"), target="len2")
    (upload,) = server.uploads
    assert upload["size"] == m.artifacts[0].raw_size
    assert upload["sha256"] == m.artifacts[0].raw_sha256 == upload["checksum"]
    assert upload["transfer_encoding"] is None and upload["content_length"] > upload["size"]


@pytest.mark.parametrize("name", ["..", "q?x#y", "%2F..%2F"])
def test_hostile_collection_names_round_trip(
    server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path, name: str
) -> None:
    """A server may report any collection name: it stays one URL segment and
    one path segment, and backup + restore work under it."""
    server.create_collection(name, DIM, points=12, seed=13)
    ctx = make_ctx(server)
    m = backup(ctx, [name]).results[0].manifest
    assert m is not None and m.ok and m.series == name
    for p in qdir.rglob("*"):
        assert p.resolve().is_relative_to(qdir.resolve())
    server.delete_collection(name)
    assert restore(ctx, resolve(ctx, "latest", name)).points_count == 12
    assert server.collection_names() == [name]


def test_streamed_restore_reads_the_artifact_once(
    server: QdrantTestServer, make_ctx: MakeCtx, qdir: Path
) -> None:
    """The streamed upload reads the stored artifact once (issue 14): it used
    to hash it in a pass of its own, then read it again to decode it (twice
    the download from S3). Counted at the repository; failed before (2x)."""
    server.create_collection("once", DIM, points=60, seed=22)
    ctx = make_ctx(server)
    backup(ctx, ["once"]).raise_for_status()
    (art,) = artifacts(qdir)
    served = 0
    real_open = ctx.storage.open_read

    class Counted:
        def __init__(self, fh: Any) -> None:
            self._fh = fh

        def read(self, n: int = -1) -> bytes:
            nonlocal served
            data: bytes = self._fh.read(n)
            served += len(data)
            return data

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()

    def open_read(key: str) -> Any:
        return Counted(real_open(key)) if key.endswith(art.name) else real_open(key)

    ctx.storage.open_read = open_read
    server.delete_collection("once")
    restore(ctx, resolve(ctx, "latest"))
    assert server.points_count("once") == 60
    size = art.stat().st_size
    assert served == size, f"{served} bytes read for a {size}-byte artifact"
