"""Qdrant snapshot backups end to end against a Qdrant server over real HTTP:
backup, list, verify (standard and --deep), restore with its checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from seawall.app.backup import qdrant_backup as backup
from seawall.catalog.models import Manifest
from seawall.errors import NotFoundError, RefusedError, VerificationError
from seawall.qdrant.backup import backup_collection, connect
from seawall.qdrant.client import QdrantClient
from seawall.qdrant.restore import check_version, restore
from seawall.qdrant.select import resolve
from seawall.qdrant.verify import verify_backup
from tests.qdrant_server import QdrantTestServer, vector_for
from tests.qdrant_server.fixtures import require_faults

from .conftest import MakeCtx

DIM = 8


def leftovers(handle: Any) -> list[Any]:
    """Snapshots still held by the server (test server only)."""
    return list(handle.all_snapshots()) if hasattr(handle, "all_snapshots") else []


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_backup_all_collections_list_and_layout(
    qdrant_server: Any, make_ctx: MakeCtx, qdir: Path
) -> None:
    # Real Qdrant refuses "/" in names; the test server plays a hostile server.
    hostile = "x/../../escape" if isinstance(qdrant_server, QdrantTestServer) else "x..escape"
    qdrant_server.create_collection("docs", DIM, points=300, seed=1)
    qdrant_server.create_collection(hostile, 4, points=20, seed=2)
    ctx = make_ctx(qdrant_server)
    run = backup(ctx, ["docs", hostile])
    assert [r.error for r in run.results] == [None, None]
    run.raise_for_status()
    by_name = {r.collection: r.manifest for r in run.results}
    assert set(by_name) >= {"docs", hostile}
    docs = by_name["docs"]
    assert docs is not None and docs.ok and docs.engine == "qdrant" and docs.kind == "snapshot"
    assert docs.qdrant is not None
    assert docs.qdrant.points_count == 300
    assert docs.qdrant.version and docs.qdrant.snapshot_checksum
    assert docs.qdrant.config and docs.qdrant.config["params"]["vectors"]["size"] == DIM
    assert docs.qdrant.shards and docs.qdrant.shards[0]["shard_id"] == 0
    assert len(docs.qdrant.sample["points"]) == 3  # type: ignore[index]
    art = docs.artifacts[0]
    assert (
        art.role == "snapshot"
        and art.stored_size > 0
        and art.raw_sha256 == docs.qdrant.snapshot_checksum
    )
    assert art.stored_size < art.raw_size  # zstd on a Qdrant archive
    assert docs.verification is not None and docs.verification.ok
    # every file stays inside the backup dir, the hostile name is encoded
    for path in files_under(qdir):
        assert path.resolve().is_relative_to(qdir.resolve())
    assert not (qdir.parent / "escape").exists()
    listed = ctx.catalog.scan("qdrant").manifests
    assert {m.series for m in listed} == {"docs", hostile}
    assert leftovers(qdrant_server) == []  # server copies deleted


def test_backup_one_collection_by_name(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    qdrant_server.create_collection("one", DIM, points=50, seed=3)
    qdrant_server.create_collection("other", DIM, points=10, seed=4)
    ctx = make_ctx(qdrant_server)
    run = backup(ctx, ["one"])
    assert [r.collection for r in run.results] == ["one"]
    assert run.results[0].manifest is not None
    assert {m.series for m in ctx.catalog.scan("qdrant").manifests} == {"one"}


def test_backup_of_missing_collection_fails_clearly(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    ctx = make_ctx(qdrant_server)
    run = backup(ctx, ["nope"])
    with pytest.raises(NotFoundError, match="does not exist"):
        run.raise_for_status()
    # a failure status is recorded: as a rejected run, since "nope" was never
    # backed up (no series that pages for a week; ADR 0010)
    from seawall.catalog.rejected import list_rejected

    assert ctx.catalog.scan("qdrant").manifests == []
    assert [r.manifest.status for r in list_rejected(ctx.storage)] == ["failed"]


def test_verify_detects_a_corrupt_artifact(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    qdrant_server.create_collection("c", DIM, points=40, seed=5)
    ctx = make_ctx(qdrant_server)
    m = backup(ctx, ["c"]).results[0].manifest
    assert m is not None
    path = ctx.storage.path(f"qdrant/snapshot/c/{m.id}/{m.artifacts[0].name}")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    res = verify_backup(ctx, ctx.storage, m, deep=False, write_back=True)
    assert not res.ok and isinstance(res.error, VerificationError)
    assert "sha256" in res.verification.message
    reread = ctx.catalog.find(m.id, "qdrant", "snapshot", "c")
    assert reread.verification is not None and reread.verification.ok is False


def test_verify_deep_loads_segments_with_qdrant_edge(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    pytest.importorskip("qdrant_edge")
    qdrant_server.create_collection("deep", DIM, points=400, seed=6, shard_number=2)
    ctx = make_ctx(qdrant_server)
    m = backup(ctx, ["deep"]).results[0].manifest
    assert m is not None
    res = verify_backup(ctx, ctx.storage, m, deep=True, write_back=True)
    assert res.ok, res.verification.message
    text = " ".join(res.verification.checks)
    assert "segment data" in text and "400 points" in text and "sample search" in text
    # a manifest that lies about the points count fails the deep check
    assert m.qdrant is not None
    m.qdrant.points_count = 401
    bad = verify_backup(ctx, ctx.storage, m, deep=True, write_back=False)
    assert not bad.ok and "400 points" in bad.verification.message


def test_restore_checks_points_and_sample_search(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    qdrant_server.create_collection("r", DIM, points=250, seed=7)
    ctx = make_ctx(qdrant_server)
    m = backup(ctx, ["r"]).results[0].manifest
    assert m is not None
    qdrant_server.delete_collection("r")
    res = restore(ctx, resolve(ctx, "latest"))
    assert res.points_count == 250 == res.expected_points
    assert any("sample search" in c for c in res.checks)
    assert qdrant_server.points_count("r") == 250
    # the restored data is the backed-up data: point 42 finds itself
    client = QdrantClient(qdrant_server.url, api_key=qdrant_server.api_key)
    with client:
        assert client.query("r", vector_for(42, DIM, 7), None, limit=1) == [42]
    # restore under another name
    res2 = restore(ctx, resolve(ctx, m.id), target="r-copy")
    assert res2.collection == "r-copy" and qdrant_server.points_count("r-copy") == 250
    if isinstance(qdrant_server, QdrantTestServer):
        upload = qdrant_server.uploads[-1]
        assert upload["checksum"] == m.qdrant.snapshot_checksum  # type: ignore[union-attr]
        assert upload["priority"] == "snapshot"


def test_restore_that_loses_points_is_reported(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    faults = require_faults(qdrant_server)
    qdrant_server.create_collection("lossy", DIM, points=60, seed=8)
    ctx = make_ctx(qdrant_server)
    backup(ctx, ["lossy"]).raise_for_status()
    faults.lose_points_on_restore(count=5, collection="lossy")
    with pytest.raises(VerificationError, match=r"55 points.*recorded 60"):
        restore(ctx, resolve(ctx, "latest", "lossy"), clean=True)
    assert faults.fired["lose_points"] == 1


def test_restore_refuses_a_server_two_minors_newer(make_ctx: MakeCtx) -> None:
    with QdrantTestServer(version="1.19.0") as old:
        old.create_collection("v", DIM, points=30, seed=9)
        ctx = make_ctx(old)
        backup(ctx, ["v"]).raise_for_status()
    with QdrantTestServer(version="1.21.0") as new:
        ctx_new = make_ctx(new)
        with pytest.raises(RefusedError, match=r"1\.19\.0 snapshot into Qdrant 1\.21\.0"):
            restore(ctx_new, resolve(ctx_new, "latest"))
        assert new.uploads == []  # refused before uploading anything
        new.assert_no_spec_violations()
    with QdrantTestServer(version="1.20.3") as next_minor:
        ctx_next = make_ctx(next_minor)
        res = restore(ctx_next, resolve(ctx_next, "latest"))
        assert res.points_count == 30
        next_minor.assert_no_spec_violations()


@pytest.mark.parametrize(
    ("snap", "server", "ok"),
    [
        ("1.19.0", "1.19.4", True),
        ("1.19.0", "1.20.0", True),
        ("1.19.0", "1.21.0", False),
        ("1.19.0", "2.0.0", False),
        ("1.19.2", "1.18.0", False),
        (None, "1.19.0", True),
    ],
)
def test_version_rule(snap: str | None, server: str, ok: bool) -> None:
    if ok:
        check_version(snap, server)
    else:
        with pytest.raises(RefusedError):
            check_version(snap, server)


def test_restore_from_a_copied_backup_directory(
    qdrant_server: Any, make_ctx: MakeCtx, tmp_path: Path
) -> None:
    import shutil

    qdrant_server.create_collection("copied", DIM, points=25, seed=10)
    ctx = make_ctx(qdrant_server)
    m = backup(ctx, ["copied"]).results[0].manifest
    assert m is not None
    elsewhere = tmp_path / "offsite"
    shutil.copytree(ctx.storage.path(f"qdrant/snapshot/copied/{m.id}"), elsewhere)
    source = resolve(ctx, str(elsewhere))
    assert not source.in_catalog and source.manifest.id == m.id
    res = verify_backup(
        ctx, source.storage, source.manifest, deep=False, write_back=False, in_catalog=False
    )
    assert res.ok
    out = tmp_path / "decoded.snapshot"
    restore(ctx, source, output=out)
    import hashlib

    assert hashlib.sha256(out.read_bytes()).hexdigest() == m.qdrant.snapshot_checksum  # type: ignore[union-attr]


def test_encrypted_backup_decrypts_with_the_age_cli(
    qdrant_server: Any, make_ctx: MakeCtx, age_keys: tuple[Path, str], tmp_path: Path
) -> None:
    import hashlib
    import subprocess

    key, public = age_keys
    qdrant_server.create_collection("enc", DIM, points=30, seed=11)
    ctx = make_ctx(
        qdrant_server,
        encryption=True,
        encryption_recipients=[public],
        encryption_identity_files=[key],
    )
    m = backup(ctx, ["enc"]).results[0].manifest
    assert m is not None and m.verification is not None and m.verification.ok
    art = m.artifacts[0]
    assert art.name.endswith(".zst.age") and art.encryption is not None
    stored = ctx.storage.path(f"qdrant/snapshot/enc/{m.id}/{art.name}")
    # the disaster-recovery promise: stock age + zstd give back Qdrant's snapshot
    plain = subprocess.run(
        f"age -d -i {key} {stored} | zstd -dc", shell=True, check=True, capture_output=True
    ).stdout
    assert hashlib.sha256(plain).hexdigest() == m.qdrant.snapshot_checksum  # type: ignore[union-attr]
    qdrant_server.delete_collection("enc")
    assert restore(ctx, resolve(ctx, "latest", "enc")).points_count == 30


def test_series_lock_blocks_an_overlapping_run(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    from seawall.catalog.locks import series_lock
    from seawall.errors import LockedError

    qdrant_server.create_collection("locked", DIM, points=5, seed=12)
    ctx = make_ctx(qdrant_server, lock_timeout=0.2)
    client, version = connect(ctx)
    try:
        with (
            series_lock(
                ctx.settings.backup_dir, "qdrant", "snapshot", "locked", timeout=1, command="test"
            ),
            pytest.raises(LockedError),
        ):
            backup_collection(ctx, client, "locked", version=version)
    finally:
        client.close()


def _manifest_texts(root: Path) -> list[str]:
    return [p.read_text() for p in root.rglob("manifest.json")]


def test_api_key_never_in_manifests_or_logs(
    qdrant_server_with_key: Any, make_ctx: MakeCtx, qdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = qdrant_server_with_key
    key = server.api_key
    assert key
    server.create_collection("k", DIM, points=10, seed=13)
    ctx = make_ctx(server, log_level="debug")
    with caplog.at_level("DEBUG", logger="seawall"):
        run = backup(ctx)
    run.raise_for_status()
    texts = _manifest_texts(qdir)
    assert texts and all(key not in t for t in texts)
    assert key not in caplog.text
    assert all(key not in str(m.model_dump()) for m in ctx.catalog.scan("qdrant").manifests)


def test_manifest_is_what_the_exporter_reads(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    qdrant_server.create_collection("exp", DIM, points=12, seed=14)
    ctx = make_ctx(qdrant_server, prune_after_backup=True)  # retention runs after it
    backup(ctx, ["exp"]).raise_for_status()
    backup(ctx, ["exp"]).raise_for_status()
    m = ctx.catalog.scan("qdrant", "snapshot", "exp").manifests[0]
    assert isinstance(m, Manifest)
    assert (m.engine, m.kind, m.series, m.status) == ("qdrant", "snapshot", "exp", "success")
    assert m.finished_at and m.duration_seconds is not None and m.stored_size > 0
    assert m.labels["collection"] == "exp"


@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="real Qdrant only")
def test_real_qdrant_smoke(qdrant_server: Any, make_ctx: MakeCtx) -> None:
    """With QDRANT_URL set, the same code path runs against a real server."""
    qdrant_server.create_collection("seawall-real", DIM, points=20, seed=1)
    ctx = make_ctx(qdrant_server)
    backup(ctx, ["seawall-real"]).raise_for_status()


@pytest.mark.parametrize(
    ("settings", "suffix", "compression"),
    [
        ({}, ".tar.zst", "zstd"),
        ({"qdrant_compression": "none"}, ".tar", "none"),
        ({"compression": "gzip"}, ".tar.gz", "gzip"),
    ],
)
def test_snapshot_compression_setting(
    qdrant_server: Any, make_ctx: MakeCtx, settings: dict[str, Any], suffix: str, compression: str
) -> None:
    qdrant_server.create_collection("z", DIM, points=20, seed=15)
    ctx = make_ctx(qdrant_server, **settings)
    m = backup(ctx, ["z"]).results[0].manifest
    assert m is not None and m.verification is not None and m.verification.ok
    art = m.artifacts[0]
    assert art.name == "snapshot" + suffix and art.compression == compression
