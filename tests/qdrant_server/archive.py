"""Snapshot archives in Qdrant's on-disk layout, and their restore.

Layout (from Qdrant's source: ``Collection::create_snapshot``,
``ShardReplicaSet::create_snapshot``, ``LocalShard::create_snapshot`` and
``Segment::take_snapshot`` with ``SnapshotFormat::Regular``)::

    collection snapshot (plain, uncompressed tar)
      config.json                   collection config
      version.info                  Qdrant version that wrote it
      payload_index.json            payload index schema
      0/                            one directory per shard id
        replica_state.json          {"is_local", "this_peer_id", "peers": {id: state}}
        shard_config.json           {"type": "ReplicaSet"}
        segments/<uuid>.tar         one NESTED tar per segment, holding
                                      snapshot/files/<segment files>
        wal/                        (only when the shard is local)
      1/ ...

A shard snapshot is one shard directory's content at the archive root (that
is what ``qdrant_edge.EdgeShard.unpack_snapshot`` accepts). A peer that holds
no replica of a shard still writes the shard directory with
``replica_state.json`` (``is_local: false``) and no data: the tiny "empty"
snapshot that fools naive cluster backups.

A full-storage snapshot is a tar of collection snapshot files plus a
``config.json`` with ``collections_mapping`` and ``collections_aliases``.

Archives are written by ``tar_writer.TarWriter`` (kernel copies, bounded
memory); restores stream through ``tarfile`` with path checks.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .storage import CollectionMeta, LocalShard, Node, StorageError
from .tar_writer import TarWriter, hash_file

COPY_CHUNK = 1024 * 1024


def _shard_data(tar: TarWriter, prefix: str, shard: LocalShard) -> int:
    """Append a local shard's segments (nested tars) and an empty WAL directory.

    The shard lock is held from flush to the last byte so no write lands
    half-way through the copy (Qdrant proxies segments for the same reason).
    Returns the number of segments archived.
    """
    segments = 0
    with shard.lock:
        shard.edge.flush()
        tar.add_dir(f"{prefix}segments")
        seg_root = shard.path / "segments"
        for seg in sorted(
            p for p in seg_root.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            tar.add_segment_tar(f"{prefix}segments/{seg.name}.tar", seg)
            segments += 1
        # Our shards run without a WAL (see storage.edge_config); Qdrant ships
        # an empty WAL in the same situation (LocalShard::snapshot_empty_wal).
        tar.add_dir(f"{prefix}wal")
    return segments


def replica_state(
    meta: CollectionMeta, shard_id: int, this_peer: int, is_local: bool, distributed: bool
) -> dict[str, Any]:
    peers = meta.peers_of(shard_id) if distributed else {this_peer: "Active"}
    return {
        "is_local": is_local,
        "this_peer_id": this_peer,
        "peers": {str(p): s for p, s in sorted(peers.items())},
    }


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _finish(path: Path, out: Any) -> tuple[int, str]:
    out.flush()
    os.fsync(out.fileno())
    return path.stat().st_size, hash_file(path)


def write_collection_snapshot(
    path: Path, meta: CollectionMeta, node: Node, version: str
) -> tuple[int, str]:
    """Write this peer's snapshot of ``meta`` to ``path``; returns (size, sha256)."""
    distributed = node.cluster.distributed
    with path.open("wb") as out:
        tar = TarWriter(out)
        for shard_id in range(meta.shard_number):
            local = node.has_local_shard(meta, shard_id)
            prefix = f"{shard_id}/"
            tar.add_dir(str(shard_id))
            if local:
                _shard_data(tar, prefix, node.local_shard(meta, shard_id))
            state = replica_state(meta, shard_id, node.peer_id, local, distributed)
            tar.add_bytes(f"{prefix}replica_state.json", _json(state))
            tar.add_bytes(f"{prefix}shard_config.json", _json({"type": "ReplicaSet"}))
        # Qdrant appends the collection files after the shards
        config = meta.api_config()
        config["uuid"] = meta.uuid
        tar.add_bytes("version.info", version.encode())
        tar.add_bytes("config.json", _json(config))
        tar.add_bytes("payload_index.json", _json({"schema": meta.payload_schema}))
        tar.close()
        return _finish(path, out)


def write_shard_snapshot(
    path: Path, meta: CollectionMeta, node: Node, shard_id: int
) -> tuple[int, str]:
    """Write a snapshot of one local shard replica; returns (size, sha256)."""
    shard = node.local_shard(meta, shard_id)
    with path.open("wb") as out:
        tar = TarWriter(out)
        _shard_data(tar, "", shard)
        state = replica_state(meta, shard_id, node.peer_id, True, node.cluster.distributed)
        tar.add_bytes("replica_state.json", _json(state))
        tar.add_bytes("shard_config.json", _json({"type": "ReplicaSet"}))
        tar.close()
        return _finish(path, out)


def write_full_snapshot(path: Path, members: dict[str, tuple[str, Path]]) -> tuple[int, str]:
    """``members``: collection name -> (snapshot file name, path of that file)."""
    with path.open("wb") as out:
        tar = TarWriter(out)
        for _coll, (fname, fpath) in sorted(members.items()):
            tar.add_file(fname, fpath)
        mapping = {c: f for c, (f, _p) in members.items()}
        tar.add_bytes(
            "config.json", _json({"collections_mapping": mapping, "collections_aliases": {}})
        )
        tar.close()
        return _finish(path, out)


# -- restore ------------------------------------------------------------------------


def _invalid(reason: str) -> StorageError:
    return StorageError(400, f"Bad request: Invalid snapshot: {reason}")


def _safe_member_path(name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if (
        p.is_absolute()
        or any(part in ("..", "") for part in p.parts if part != ".")
        or "\x00" in name
    ):
        raise _invalid(f"unsafe path in archive: {name!r}")
    return PurePosixPath(*[part for part in p.parts if part != "."]) if p.parts else p


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:")
    except (tarfile.TarError, OSError) as exc:
        raise _invalid(f"not a tar archive ({exc})") from exc


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = tar.extractfile(member)
    if src is None:
        raise _invalid(f"unreadable member {member.name!r}")
    with target.open("wb") as out:
        shutil.copyfileobj(src, out, COPY_CHUNK)


def _is_nested_segment(rel: PurePosixPath) -> bool:
    return (
        len(rel.parts) >= 2
        and rel.parts[-2] == "segments"
        and len(rel.name) > 4
        and rel.name.endswith(".tar")
    )


def _extract_nested_segment(tar: tarfile.TarFile, member: tarfile.TarInfo, seg_dir: Path) -> None:
    """Unpack a nested segment tar straight from the outer stream into
    ``segments/<uuid>/`` (``snapshot/files/`` stripped), never writing the
    nested tar itself: what Qdrant's ``Segment::restore_snapshot_in_place``
    ends up with, for one write instead of two."""
    src = tar.extractfile(member)
    if src is None:
        raise _invalid(f"unreadable member {member.name!r}")
    seg_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=src, mode="r|") as inner:
        for im in inner:
            irel = _safe_member_path(im.name)
            if irel.parts[:2] != ("snapshot", "files") or len(irel.parts) == 2:
                continue  # the snapshot/ and snapshot/files/ dirs, legacy RocksDB backups
            target = seg_dir.joinpath(*irel.parts[2:])
            if im.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif im.isfile():
                _write_member(inner, im, target)
            else:
                raise _invalid(f"unsupported member type in segment archive: {im.name!r}")


def safe_extract(archive: Path, dest: Path, *, unpack_segments: bool = False) -> None:
    """Extract regular files and directories only; refuse links and escapes.

    With ``unpack_segments``, nested ``segments/<uuid>.tar`` members are
    unpacked in the same pass. (Python 3.11.2 has no tarfile extraction
    filters, hence the manual walk.)
    """
    with _open_tar(archive) as tar:
        try:
            for member in tar:
                rel = _safe_member_path(member.name)
                target = dest.joinpath(*rel.parts) if rel.parts else dest
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile() and unpack_segments and _is_nested_segment(rel):
                    _extract_nested_segment(tar, member, target.with_name(rel.name[: -len(".tar")]))
                elif member.isfile():
                    _write_member(tar, member, target)
                else:
                    raise _invalid(f"unsupported member type in archive: {member.name!r}")
        except tarfile.TarError as exc:
            raise _invalid(f"corrupt tar archive ({exc})") from exc


def _has_segments(shard_dir: Path) -> bool:
    seg_root = shard_dir / "segments"
    return seg_root.is_dir() and any(p.is_dir() for p in seg_root.iterdir())


@dataclass
class RestoredShard:
    shard_id: int
    path: Path
    has_data: bool
    replica_state: dict[str, Any]


@dataclass
class RestoredCollection:
    config: dict[str, Any]
    version: str | None = None
    shards: dict[int, RestoredShard] = field(default_factory=dict)
    #: payload_index.json's ``schema``: field -> field_schema
    payload_schema: dict[str, Any] = field(default_factory=dict)


def read_collection_archive(archive: Path, work_dir: Path) -> RestoredCollection:
    """Extract a collection snapshot into ``work_dir`` and describe it."""
    safe_extract(archive, work_dir, unpack_segments=True)
    config_path = work_dir / "config.json"
    if not config_path.is_file():
        raise _invalid("config.json is missing (not a collection snapshot?)")
    try:
        config = json.loads(config_path.read_text())
    except ValueError as exc:
        raise _invalid(f"config.json is not JSON ({exc})") from exc
    version_path = work_dir / "version.info"
    version = version_path.read_text().strip() if version_path.is_file() else None
    restored = RestoredCollection(config, version)
    index_path = work_dir / "payload_index.json"
    if index_path.is_file():
        try:
            restored.payload_schema = dict(json.loads(index_path.read_text()).get("schema") or {})
        except (ValueError, AttributeError) as exc:
            raise _invalid(f"payload_index.json is not valid ({exc})") from exc
    for entry in sorted(work_dir.iterdir()):
        if not (entry.is_dir() and entry.name.isdigit()):
            continue
        shard_id = int(entry.name)
        state_path = entry / "replica_state.json"
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
        has_data = _has_segments(entry)
        restored.shards[shard_id] = RestoredShard(
            shard_id, entry, has_data and bool(state.get("is_local", True)), state
        )
    if not restored.shards:
        raise _invalid("no shard directories in the archive")
    return restored


def read_shard_archive(archive: Path, work_dir: Path) -> Path:
    """Extract a shard snapshot into ``work_dir``; returns the shard directory."""
    safe_extract(archive, work_dir, unpack_segments=True)
    if not _has_segments(work_dir):
        raise _invalid("shard snapshot has no segment data")
    return work_dir


def check_version_compatible(snapshot_version: str | None, server_version: str) -> None:
    """Qdrant recovers snapshots of its own minor version or the previous one."""
    if snapshot_version is None:
        return
    try:
        snap = [int(x) for x in snapshot_version.split(".")[:2]]
        server = [int(x) for x in server_version.split(".")[:2]]
    except ValueError as exc:
        raise _invalid(f"unparsable version.info {snapshot_version!r}") from exc
    if snap[0] != server[0] or not (0 <= server[1] - snap[1] <= 1):
        raise StorageError(
            400,
            f"Wrong input: Cannot recover snapshot of version {snapshot_version} "
            f"on Qdrant {server_version}: only the same or the previous minor version is supported",
        )


def peek_version(archive: Path) -> str | None:
    """``version.info`` of a collection snapshot, read before extracting
    anything (Qdrant writes it after the shards: walking the headers seeks
    over the data, so this stays cheap)."""
    with _open_tar(archive) as tar:
        try:
            for member in tar:
                if member.name in ("version.info", "./version.info") and member.isfile():
                    src = tar.extractfile(member)
                    return src.read(64).decode("utf-8", "replace").strip() if src else None
        except tarfile.TarError as exc:
            raise _invalid(f"corrupt tar archive ({exc})") from exc
    return None
