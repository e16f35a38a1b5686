"""Structural verification of Qdrant snapshot archives, streaming.

A Qdrant snapshot is a plain tar (Qdrant's ``Collection::create_snapshot``):

    config.json, version.info, payload_index.json
    <shard id>/replica_state.json, shard_config.json,
               segments/<uuid>.tar   (a NESTED tar per segment), wal/

A shard snapshot is one shard directory's content at the archive root; a
full-storage snapshot is a tar of collection snapshot files plus a
``config.json`` with ``collections_mapping``.

We read the archive once, front to back, in tarfile's stream mode (``r|``),
opening each nested segment tar in stream mode too and draining every
member: memory stays at tarfile's record buffer whatever the size, and every
byte of every segment is read, so truncation and corrupt nested tars show.
This does not interpret segment files; ``--deep`` (:mod:`seawall.qdrant.deep`)
loads them with Qdrant's own storage engine.

The archive is untrusted (it may come from a compromised server or a
tampered volume): member names are checked and never used as paths here.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any, Literal

from seawall.errors import VerificationError

ArchiveKind = Literal["collection", "shard", "full"]
JSON_LIMIT = 16 * 1024 * 1024
_SHARD_DIR = re.compile(r"^\d{1,6}$")
_DRAIN = 1024 * 1024


@dataclass
class ShardReport:
    """What one shard directory of the archive holds."""

    shard_id: int | None
    is_local: bool | None = None
    segments: int = 0
    segment_files: int = 0
    data_bytes: int = 0
    has_replica_state: bool = False

    @property
    def has_data(self) -> bool:
        return self.segments > 0 and self.is_local is not False


@dataclass
class ArchiveReport:
    """The structure found in a snapshot archive."""

    kind: ArchiveKind
    version: str | None = None
    config: dict[str, Any] | None = None
    shards: dict[int, ShardReport] = field(default_factory=dict)
    members: int = 0
    nested: dict[str, ArchiveReport] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """Everything that makes this archive unfit to restore."""
        out: list[str] = []
        if self.kind == "collection":
            if self.config is None:
                out.append("no config.json")
            if not self.shards:
                out.append("no shard directories")
            for sid, shard in sorted(self.shards.items()):
                if not shard.has_replica_state:
                    out.append(f"shard {sid}: no replica_state.json")
                if not shard.has_data:
                    out.append(
                        f"shard {sid} holds no segment data (a snapshot taken on a node that "
                        "does not hold this shard)"
                    )
        elif self.kind == "shard":
            root = self.shards.get(-1)
            if root is None or root.segments == 0:
                out.append("shard snapshot holds no segment data")
        else:
            if self.config is None:
                out.append("no config.json")
            for coll, fname in sorted(self.mapping.items()):
                nested = self.nested.get(fname)
                if nested is None:
                    out.append(f"collection {coll!r}: {fname!r} missing from the archive")
                else:
                    out.extend(f"collection {coll!r}: {p}" for p in nested.problems())
        return out

    def summary(self) -> str:
        if self.kind == "full":
            return f"full-storage archive with {len(self.nested)} collection snapshot(s)"
        shards = [s for s in self.shards.values() if s.has_data]
        segs = sum(s.segments for s in self.shards.values())
        what = "shard" if self.kind == "shard" else f"{len(shards)}/{len(self.shards)} shard(s)"
        return (
            f"tar structure ok: {what} with data, {segs} segment(s), version {self.version or '?'}"
        )


def _clean_name(name: str) -> PurePosixPath:
    """Member name as a relative path; refuse absolute / ``..`` / NUL names."""
    if "\x00" in name or name.startswith("/") or "\\" in name:
        raise VerificationError(f"snapshot archive has an unsafe member name {name!r}")
    path = PurePosixPath(name)
    parts = [p for p in path.parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise VerificationError(f"snapshot archive has an unsafe member name {name!r}")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _read_json(tar: tarfile.TarFile, member: tarfile.TarInfo, what: str) -> Any:
    if member.size > JSON_LIMIT:
        raise VerificationError(f"snapshot archive: {what} is implausibly large ({member.size} B)")
    src = tar.extractfile(member)
    if src is None:
        raise VerificationError(f"snapshot archive: {what} is not a file")
    try:
        return json.loads(src.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VerificationError(f"snapshot archive: {what} is not valid JSON ({exc})") from exc


def _drain(src: IO[bytes] | None) -> int:
    if src is None:
        return 0
    total = 0
    while chunk := src.read(_DRAIN):
        total += len(chunk)
    return total


def _segment_tar(src: IO[bytes] | None, where: str) -> tuple[int, int]:
    """Walk a nested segment tar; returns (files, bytes)."""
    if src is None:
        raise VerificationError(f"snapshot archive: {where} is not a file")
    files = 0
    size = 0
    try:
        with tarfile.open(fileobj=src, mode="r|") as seg:
            for member in seg:
                _clean_name(member.name)
                if member.isfile():
                    files += 1
                    size += _drain(seg.extractfile(member))
    except tarfile.TarError as exc:
        raise VerificationError(f"snapshot archive: segment {where} is corrupt ({exc})") from exc
    if files == 0:
        raise VerificationError(f"snapshot archive: segment {where} is empty")
    _drain(src)  # tar padding after the end-of-archive blocks
    return files, size


def _shard_member(
    report: ShardReport,
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    rel: PurePosixPath,
    where: str,
) -> None:
    """Account for one member inside a shard directory (``rel`` is relative to it)."""
    parts = rel.parts
    if parts == ("replica_state.json",) and member.isfile():
        state = _read_json(tar, member, f"{where}replica_state.json")
        report.has_replica_state = True
        if isinstance(state, dict) and isinstance(state.get("is_local"), bool):
            report.is_local = state["is_local"]
        return
    if len(parts) >= 2 and parts[0] == "segments":
        if len(parts) == 2 and parts[1].endswith(".tar") and member.isfile():
            files, size = _segment_tar(tar.extractfile(member), f"{where}{rel}")
            report.segments += 1
            report.segment_files += files
            report.data_bytes += size
            return
        if len(parts) == 2 and member.isdir():
            report.segments += 1  # older Qdrant: segments as plain directories
            return
        if member.isfile():
            report.segment_files += 1
            report.data_bytes += _drain(tar.extractfile(member))
            return
    if member.isfile():
        _drain(tar.extractfile(member))


def inspect_archive(fileobj: IO[bytes], kind: ArchiveKind) -> ArchiveReport:
    """Read an archive front to back and report its structure.

    Raises :class:`VerificationError` for anything that is not a readable
    tar in Qdrant's layout; :meth:`ArchiveReport.problems` lists the
    layout problems that do not stop the walk (e.g. a shard without data).
    """
    report = ArchiveReport(kind)
    if kind == "shard":
        report.shards[-1] = ShardReport(None)
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for member in tar:
                report.members += 1
                rel = _clean_name(member.name)
                _member(report, tar, member, rel)
    except tarfile.TarError as exc:
        raise VerificationError(f"snapshot archive is not a readable tar ({exc})") from exc
    except EOFError as exc:
        raise VerificationError("snapshot archive is truncated") from exc
    if report.members == 0:
        raise VerificationError("snapshot archive is empty")
    return report


def _member(
    report: ArchiveReport, tar: tarfile.TarFile, member: tarfile.TarInfo, rel: PurePosixPath
) -> None:
    parts = rel.parts
    if report.kind == "shard":
        _shard_member(report.shards[-1], tar, member, rel, "")
        return
    if report.kind == "full":
        if parts == ("config.json",) and member.isfile():
            config = _read_json(tar, member, "config.json")
            report.config = config if isinstance(config, dict) else {}
            mapping = report.config.get("collections_mapping") or {}
            if isinstance(mapping, dict):
                report.mapping = {str(k): str(v) for k, v in mapping.items()}
        elif len(parts) == 1 and member.isfile():
            nested_src = tar.extractfile(member)
            if nested_src is not None:
                report.nested[parts[0]] = inspect_archive(nested_src, "collection")
                _drain(nested_src)
        elif member.isfile():
            _drain(tar.extractfile(member))
        return
    # collection snapshot
    if parts == ("config.json",) and member.isfile():
        config = _read_json(tar, member, "config.json")
        if not isinstance(config, dict):
            raise VerificationError("snapshot archive: config.json is not an object")
        report.config = config
        return
    if parts == ("version.info",) and member.isfile():
        src = tar.extractfile(member)
        report.version = src.read(64).decode("utf-8", "replace").strip() if src else None
        return
    if parts and _SHARD_DIR.match(parts[0]):
        sid = int(parts[0])
        shard = report.shards.setdefault(sid, ShardReport(sid))
        if len(parts) > 1:
            _shard_member(shard, tar, member, PurePosixPath(*parts[1:]), f"{sid}/")
        return
    if member.isfile():
        _drain(tar.extractfile(member))


def kind_of(manifest_kind: str) -> ArchiveKind:
    return {"snapshot": "collection", "shard-snapshot": "shard", "full-storage": "full"}.get(
        manifest_kind, "collection"
    )  # type: ignore[return-value]
