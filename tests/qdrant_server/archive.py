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

Archives are written as a stream through a sha256 tap, so memory stays bounded
and the checksum costs no second read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .storage import CollectionMeta, LocalShard, Node, StorageError

COPY_CHUNK = 1024 * 1024


class HashingWriter(io.RawIOBase):
    """File-like sink that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._target.write(view)
        self.sha256.update(view)
        self.size += len(view)
        return len(view)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_json(tar: tarfile.TarFile, name: str, obj: Any) -> None:
    _add_bytes(tar, name, json.dumps(obj).encode())


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mode = 0o644
    with path.open("rb") as fh:
        tar.addfile(info, fh)


class NestedSegmentTar(io.RawIOBase):
    """A segment's nested tar (``snapshot/files/<relative path>`` per file),
    generated on the fly while the outer tar copies it.

    Why: the outer tar header needs the nested archive's size up front. Tar
    sizes are computable (512-byte header + data padded to 512 per file, then
    two zero blocks), so the nested archive never touches the disk: creating a
    snapshot writes each byte once, as Qdrant's streaming tar builder does.
    The files must not change while this is read (the caller holds the shard
    lock).
    """

    def __init__(self, segment_dir: Path) -> None:
        self._members: list[tuple[bytes, Path, int]] = []
        for root, dirs, files in os.walk(segment_dir):
            dirs.sort()
            for fname in sorted(files):
                full = Path(root) / fname
                info = tarfile.TarInfo(f"snapshot/files/{full.relative_to(segment_dir).as_posix()}")
                info.size = full.stat().st_size
                info.mode = 0o644
                header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
                self._members.append((header, full, info.size))
        self.size = sum(len(h) + _padded(n) for h, _p, n in self._members) + 2 * tarfile.BLOCKSIZE
        self._chunks = self._generate()
        self._pending = b""

    def _generate(self) -> Iterator[bytes]:
        for header, path, size in self._members:
            yield header
            with path.open("rb") as fh:
                left = size
                while left:
                    data = fh.read(min(COPY_CHUNK, left))
                    if not data:
                        raise OSError(f"{path} shrank while being archived")
                    left -= len(data)
                    yield data
            if size % tarfile.BLOCKSIZE:
                yield tarfile.NUL * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)
        yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Exactly ``size`` bytes unless at the end (tarfile insists on it)."""
        parts = [self._pending]
        have = len(self._pending)
        while size < 0 or have < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if size >= 0:
            data, self._pending = data[:size], data[size:]
        else:
            self._pending = b""
        return data


def _padded(size: int) -> int:
    return (size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE


def add_shard_data(tar: tarfile.TarFile, prefix: str, shard: LocalShard) -> int:
    """Append a local shard's segments (nested tars) and an empty WAL directory.

    The shard lock is held from flush to the last file so no write lands
    half-way through the copy (Qdrant proxies segments for the same reason).
    Returns the number of segments archived.
    """
    segments = 0
    with shard.lock:
        shard.edge.flush()
        _add_dir(tar, f"{prefix}segments")
        seg_root = shard.path / "segments"
        for seg in sorted(
            p for p in seg_root.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            nested = NestedSegmentTar(seg)
            info = tarfile.TarInfo(f"{prefix}segments/{seg.name}.tar")
            info.size = nested.size
            info.mode = 0o644
            tar.addfile(info, nested)
            segments += 1
        # Our shards run without a WAL (see storage.edge_config); Qdrant ships
        # an empty WAL in the same situation (LocalShard::snapshot_empty_wal).
        _add_dir(tar, f"{prefix}wal")
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


def _collection_files(tar: tarfile.TarFile, meta: CollectionMeta, version: str) -> None:
    config = meta.api_config()
    config["uuid"] = meta.uuid
    _add_json(tar, "config.json", config)
    _add_bytes(tar, "version.info", version.encode())
    _add_json(tar, "payload_index.json", {"schema": {}})


def write_collection_snapshot(
    path: Path, meta: CollectionMeta, node: Node, version: str
) -> tuple[int, str]:
    """Write this peer's snapshot of ``meta`` to ``path``; returns (size, sha256)."""
    distributed = node.cluster.distributed
    with path.open("wb") as raw:
        sink = HashingWriter(raw)
        with tarfile.open(
            fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT, bufsize=COPY_CHUNK
        ) as tar:
            _collection_files(tar, meta, version)
            for shard_id in range(meta.shard_number):
                local = node.has_local_shard(meta, shard_id)
                prefix = f"{shard_id}/"
                _add_dir(tar, str(shard_id))
                if local:
                    add_shard_data(tar, prefix, node.local_shard(meta, shard_id))
                _add_json(
                    tar,
                    f"{prefix}replica_state.json",
                    replica_state(meta, shard_id, node.peer_id, local, distributed),
                )
                _add_json(tar, f"{prefix}shard_config.json", {"type": "ReplicaSet"})
        raw.flush()
        os.fsync(raw.fileno())
    return sink.size, sink.sha256.hexdigest()


def write_shard_snapshot(
    path: Path, meta: CollectionMeta, node: Node, shard_id: int
) -> tuple[int, str]:
    """Write a snapshot of one local shard replica; returns (size, sha256)."""
    shard = node.local_shard(meta, shard_id)
    with path.open("wb") as raw:
        sink = HashingWriter(raw)
        with tarfile.open(
            fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT, bufsize=COPY_CHUNK
        ) as tar:
            add_shard_data(tar, "", shard)
            _add_json(
                tar,
                "replica_state.json",
                replica_state(meta, shard_id, node.peer_id, True, node.cluster.distributed),
            )
            _add_json(tar, "shard_config.json", {"type": "ReplicaSet"})
        raw.flush()
        os.fsync(raw.fileno())
    return sink.size, sink.sha256.hexdigest()


def write_full_snapshot(path: Path, members: dict[str, tuple[str, Path]]) -> tuple[int, str]:
    """``members``: collection name -> (snapshot file name, path of that file)."""
    with path.open("wb") as raw:
        sink = HashingWriter(raw)
        with tarfile.open(
            fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT, bufsize=COPY_CHUNK
        ) as tar:
            for _coll, (fname, fpath) in sorted(members.items()):
                _add_file(tar, fname, fpath)
            _add_json(
                tar,
                "config.json",
                {
                    "collections_mapping": {c: f for c, (f, _p) in members.items()},
                    "collections_aliases": {},
                },
            )
        raw.flush()
        os.fsync(raw.fileno())
    return sink.size, sink.sha256.hexdigest()


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
    shards: dict[int, RestoredShard] = field(default_factory=dict)


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
    restored = RestoredCollection(config)
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
