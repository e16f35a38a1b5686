"""Mirrors on two local repositories: copy after commit, lag records, reads that
fall through to a good copy, deletions on every repository, and ``sync``.

The S3 variants (a mirror SIGKILLed mid-upload, the full PostgreSQL cycle) are
in tests/integration/storage/test_mirrors_s3.py; these run in a second.
"""

from __future__ import annotations

import io
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seawall.app.sync import sync
from seawall.catalog import Artifact, Catalog, Manifest, new_backup_id
from seawall.catalog.store import artifact_key, manifest_key
from seawall.errors import ConfigError, VerificationError
from seawall.pipeline import PipelineSpec, store_stream
from seawall.pipeline.decode import decode_to
from seawall.settings import Settings
from seawall.storage.factory import open_repository
from seawall.storage.mirror import MirroredStorage
from seawall.storage.mirror_layout import deletes_prefix, mirror_id, pending_prefix


class _Bytes:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def _repo(primary: Path, *mirrors: Path) -> MirroredStorage:
    repo = open_repository(str(primary), [str(m) for m in mirrors])
    assert isinstance(repo, MirroredStorage)
    return repo


def _backup(repo: MirroredStorage, payload: bytes = b"payload " * 500) -> Manifest:
    """An artifact through the real pipeline, then its manifest (last), as engines do."""
    now = datetime.now(UTC)
    m = Manifest(
        id=new_backup_id(now),
        engine="postgresql",
        kind="logical",
        series="app",
        target="app",
        status="success",
        started_at=now,
        finished_at=now,
        duration_seconds=0.0,
    )
    res = store_stream(io.BytesIO(payload), repo, artifact_key(m, "dump.bin.zst"), PipelineSpec())
    m.artifacts.append(
        Artifact(
            name="dump.bin.zst",
            role="dump",
            stored_size=res.stored_size,
            raw_size=res.raw_size,
            sha256=res.sha256,
            compression="zstd",
        )
    )
    Catalog(repo).write(m)
    return m


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _pending(repo: MirroredStorage) -> list[str]:
    return [i.key for m in repo.mirrors for i in repo.primary.list(pending_prefix(m.id))]


def test_every_write_reaches_the_mirror_and_leaves_no_record(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "p", tmp_path / "m")
    m = _backup(repo)
    assert _files(tmp_path / "m") == {artifact_key(m, "dump.bin.zst"), manifest_key(m)}
    for key in _files(tmp_path / "m"):
        assert (tmp_path / "m" / key).read_bytes() == (tmp_path / "p" / key).read_bytes()
    assert _pending(repo) == []


def test_a_failing_mirror_is_recorded_and_sync_completes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "m").write_text("not a directory")  # every write into it fails (ENOTDIR)
    repo = _repo(tmp_path / "p", tmp_path / "m")
    with caplog.at_level(logging.WARNING):
        m = _backup(repo)
    # the backup is whole on the primary; the mirror is recorded lagging, with a warning
    assert Catalog(repo.primary).scan().manifests[0].id == m.id
    mid = mirror_id(str(tmp_path / "m"))
    assert sorted(_pending(repo)) == sorted(
        f"{pending_prefix(mid)}/{k}" for k in (artifact_key(m, "dump.bin.zst"), manifest_key(m))
    )
    assert any(
        "missed" in r.getMessage() and "seawall sync" in r.getMessage() for r in caplog.records
    )
    assert any("is down" in r.getMessage() for r in caplog.records)  # no second retry budget

    (tmp_path / "m").unlink()
    (tmp_path / "m").mkdir()
    fresh = _repo(tmp_path / "p", tmp_path / "m")
    dry = sync(fresh.primary, fresh.mirrors, dry_run=True)
    assert [c["key"] for c in dry[0].copied] == [artifact_key(m, "dump.bin.zst"), manifest_key(m)]
    assert _files(tmp_path / "m") == set()
    (report,) = sync(fresh.primary, fresh.mirrors)
    assert report.complete
    # manifest last: a half-synced backup never has a manifest in the mirror
    assert [c["key"] for c in report.copied] == [artifact_key(m, "dump.bin.zst"), manifest_key(m)]
    assert _files(tmp_path / "m") == {artifact_key(m, "dump.bin.zst"), manifest_key(m)}
    assert _pending(fresh) == []
    assert sync(fresh.primary, fresh.mirrors)[0].copied == []  # idempotent


def test_sync_refuses_a_corrupt_primary_artifact_and_holds_its_manifest(tmp_path: Path) -> None:
    (tmp_path / "m").write_text("down")
    repo = _repo(tmp_path / "p", tmp_path / "m")
    m = _backup(repo)
    art = tmp_path / "p" / artifact_key(m, "dump.bin.zst")
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0x01
    art.write_bytes(bytes(data))
    (tmp_path / "m").unlink()
    (tmp_path / "m").mkdir()
    fresh = _repo(tmp_path / "p", tmp_path / "m")
    (report,) = sync(fresh.primary, fresh.mirrors)
    assert not report.complete
    assert report.failed[0]["kind"] == "verification"
    assert "sha256" in report.failed[0]["error"]
    assert report.held_back == [manifest_key(m)]
    assert _files(tmp_path / "m") == set()  # neither the bad bytes nor an orphan manifest


def test_reads_fall_through_to_the_mirror_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = _repo(tmp_path / "p", tmp_path / "m")
    m = _backup(repo, b"the real data " * 100)
    art = m.artifacts[0]
    key = artifact_key(m, art.name)

    def decode() -> bytes:
        sink = _Bytes()
        decode_to(repo, key, sink, None, expected_sha256=art.sha256, expected_size=art.stored_size)
        return bytes(sink.data)

    # a flipped byte on the primary: the decoder uses the mirror's good copy and names it
    path = tmp_path / "p" / key
    good = path.read_bytes()
    bad = bytearray(good)
    bad[-3] ^= 0x40
    path.write_bytes(bytes(bad))
    with caplog.at_level(logging.WARNING):
        assert decode() == b"the real data " * 100
    assert any(f"mirror {tmp_path / 'm'}" in r.getMessage() for r in caplog.records)
    # the object missing on the primary: plain reads fall through too
    path.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert repo.read_bytes(key) == good
        assert repo.exists(key)
        assert decode() == b"the real data " * 100
    assert any("read from mirror" in r.getMessage() for r in caplog.records)
    # bad everywhere: the primary's error, as without mirrors
    (tmp_path / "m" / key).write_bytes(bytes(bad))
    path.write_bytes(bytes(bad))
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        decode()


def test_deletion_reaches_every_repository_or_is_recorded(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "p", tmp_path / "m")
    m1 = _backup(repo)
    m2 = _backup(repo)
    Catalog(repo).delete(m1)
    assert not any(m1.id in f for f in _files(tmp_path / "p") | _files(tmp_path / "m"))
    assert _files(tmp_path / "m") == {artifact_key(m2, "dump.bin.zst"), manifest_key(m2)}

    # the mirror unreachable during a prune: the deletion is recorded, sync applies it
    (tmp_path / "m").rename(tmp_path / "m-away")
    (tmp_path / "m").write_text("down")
    Catalog(repo).delete(m2)
    mid = mirror_id(str(tmp_path / "m"))
    recorded = {i.key for i in repo.primary.list(deletes_prefix(mid))}
    assert f"{deletes_prefix(mid)}/{manifest_key(m2)}" in recorded
    (tmp_path / "m").unlink()
    (tmp_path / "m-away").rename(tmp_path / "m")
    fresh = _repo(tmp_path / "p", tmp_path / "m")
    (report,) = sync(fresh.primary, fresh.mirrors)
    assert report.deleted[0] == manifest_key(m2)  # manifest first
    assert report.complete and _files(tmp_path / "m") == set()
    assert list(repo.primary.list(deletes_prefix(mid))) == []


def test_mirrors_setting(tmp_path: Path) -> None:
    s = Settings(backup_dir=str(tmp_path / "p"), mirrors=f"{tmp_path}/m1, s3://dr-bucket/seawall")
    assert s.mirrors == [f"{tmp_path}/m1", "s3://dr-bucket/seawall"]
    assert Settings(backup_dir=str(tmp_path)).mirrors == []
    for bad in ("relative/dir", "ftp://host/x", str(tmp_path / "p")):
        with pytest.raises(ValueError, match=r"MIRRORS|relative|scheme|primary"):
            Settings(backup_dir=str(tmp_path / "p"), mirrors=bad)
    with pytest.raises(ConfigError, match="MIRRORS"):
        open_repository(str(tmp_path), ["relative"])


def test_sync_removes_only_stale_temporaries_from_the_mirror(tmp_path: Path) -> None:
    """A copy killed mid-way leaves a temporary in the mirror, which prune (primary
    only) never sees; sync removes it once it is an hour old, never a fresh one."""
    repo = _repo(tmp_path / "p", tmp_path / "m")
    m = _backup(repo)
    d = tmp_path / "m" / artifact_key(m, "x").rsplit("/", 1)[0]
    old = d / "dump.bin.zst.partial-0badc0de"
    fresh = d / "dump.bin.zst.partial-00c0ffee"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (report,) = sync(repo.primary, repo.mirrors, dry_run=True)
    assert report.partials_removed == [str(old.relative_to(tmp_path / "m"))]
    assert old.exists()
    (report,) = sync(repo.primary, repo.mirrors)
    assert report.partials_removed == [str(old.relative_to(tmp_path / "m"))]
    assert not old.exists() and fresh.exists()
