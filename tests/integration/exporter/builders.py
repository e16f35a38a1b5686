"""Build real catalogs on disk for exporter tests, through seawall's own API.

Manifests are written with ``Catalog.write`` (atomic, as the runner does),
beside real artifact files whose size and sha256 the manifest records. WAL
files go where ``wal_layout.wal_key`` says, exactly as ``wal-push`` names
them. Nothing here imitates the exporter; it only produces its input.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from seawall.catalog.models import Artifact, Manifest, PostgresInfo, QdrantInfo, Verification
from seawall.catalog.naming import new_backup_id
from seawall.catalog.store import Catalog, artifact_key, manifest_key
from seawall.catalog.wal_layout import archive_info_key, wal_key
from seawall.storage.local import LocalStorage

T0 = datetime(2026, 11, 20, 2, 0, 0, tzinfo=UTC)


def write_backup(
    root: Path,
    engine: str,
    kind: str,
    series: str,
    *,
    finished: datetime,
    status: str = "success",
    duration: float = 60.0,
    size: int = 1000,
    verified: bool | None = None,
    postgres: PostgresInfo | None = None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """One backup: an artifact of ``size`` bytes, then its manifest (last)."""
    storage = LocalStorage(root)
    started = finished - timedelta(seconds=duration)
    backup_id = new_backup_id(started)
    data = os.urandom(size) if status == "success" else b""
    verification = None
    if verified is not None:
        verification = Verification(
            at=finished + timedelta(seconds=30),
            ok=verified,
            deep=False,
            duration_seconds=1.5,
            message="ok" if verified else "sha256 mismatch",
        )
    m = Manifest(
        id=backup_id,
        engine=engine,  # type: ignore[arg-type]
        kind=kind,
        series=series,
        target=f"127.0.0.1:5432/{series}",
        status=status,  # type: ignore[arg-type]
        started_at=started,
        finished_at=finished,
        duration_seconds=duration,
        error=None if status == "success" else "pg_dump failed",
        artifacts=[],
        postgres=postgres,
        qdrant=QdrantInfo(collection=series) if engine == "qdrant" else None,
        verification=verification,
        **(extra or {}),
    )
    if data:
        name = "dump.pgdump.zst" if engine == "postgresql" else "snapshot.tar.zst"
        storage.write_bytes(artifact_key(m, name), data)
        m.artifacts.append(
            Artifact(
                name=name,
                role="dump" if engine == "postgresql" else "snapshot",
                stored_size=len(data),
                raw_size=len(data) * 3,
                sha256=hashlib.sha256(data).hexdigest(),
                compression="zstd",
            )
        )
    Catalog(storage).write(m)
    return m


def write_base(
    root: Path,
    cluster: str,
    *,
    finished: datetime,
    start_wal: str,
    stop_wal: str,
    timeline: int = 1,
) -> Manifest:
    return write_backup(
        root,
        "postgresql",
        "base",
        cluster,
        finished=finished,
        postgres=PostgresInfo(
            timeline=timeline,
            start_wal=start_wal,
            stop_wal=stop_wal,
            wal_segment_size=16 * 1024 * 1024,
            system_identifier="7300000000000000001",
        ),
    )


def manifest_path(root: Path, m: Manifest) -> Path:
    return root / manifest_key(m)


def replace_text(path: Path, text: str) -> None:
    """Replace a file the way the runner replaces manifests: temp file + rename."""
    tmp = path.with_name(path.name + ".partial-test")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_archive_info(root: Path, cluster: str, segment_size: int = 16 * 1024 * 1024) -> None:
    LocalStorage(root).write_bytes(
        archive_info_key(cluster),
        json.dumps(
            {
                "cluster": cluster,
                "system_identifier": "7300000000000000001",
                "wal_segment_size": segment_size,
            }
        ).encode(),
    )


def segment(timeline: int, segno: int) -> str:
    per_log = 0x1_0000_0000 // (16 * 1024 * 1024)
    return f"{timeline:08X}{segno // per_log:08X}{segno % per_log:08X}"


def write_wal(root: Path, cluster: str, name: str, *, mtime: float | None = None) -> Path:
    """Archive one WAL file under the wal-push layout (atomic rename, like wal-push)."""
    data = os.urandom(64)
    key = wal_key(cluster, name, hashlib.sha256(data).hexdigest(), ".zst")
    storage = LocalStorage(root)
    storage.write_bytes(key, data)
    path = storage.path(key)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def wal_path(root: Path, cluster: str, name: str) -> Path:
    """The stored file of an archived segment (found by its name prefix)."""
    base = root / "postgresql" / "wal" / cluster / name[:16]
    matches = [p for p in base.iterdir() if p.name.startswith(name + "-")]
    assert len(matches) == 1, matches
    return matches[0]


def write_drill(
    root: Path,
    engine: str,
    series: str,
    *,
    finished: datetime,
    ok: bool,
    rto: float | None,
    rpo: float | None,
) -> Path:
    """A drill record in the format docs/exporter.md documents."""
    backup_id = new_backup_id(finished)
    m = Manifest(
        id=backup_id,
        engine=engine,  # type: ignore[arg-type]
        kind="drill",
        series=series,
        target="drill",
        status="success" if ok else "failed",
        started_at=finished - timedelta(seconds=rto or 10),
        finished_at=finished,
        duration_seconds=rto,
        drill={"rto_seconds": rto, "rpo_seconds": rpo, "backup_id": "x"},  # type: ignore[call-arg]
    )
    key = f"drills/{engine}/{series}/{backup_id}/manifest.json"
    LocalStorage(root).write_bytes(key, m.to_json())
    return root / key


def write_rejected(
    root: Path, engine: str, kind: str, series: str, *, finished: datetime
) -> Manifest:
    """A rejected run (catalog/rejected.py): a failed manifest outside every series."""
    from seawall.catalog.rejected import rejected_prefix

    m = Manifest(
        id=new_backup_id(finished),
        engine=engine,  # type: ignore[arg-type]
        kind=kind,
        series=series,
        target=f"127.0.0.1:5432/{series}",
        status="failed",
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
        duration_seconds=1.0,
        error=f'database "{series}" does not exist',
    )
    LocalStorage(root).write_bytes(f"{rejected_prefix(m)}/manifest.json", m.to_json())
    return m
