"""``verify --deep``: load the snapshot's segment data with Qdrant's engine.

Structure checks prove the tar is whole; they cannot prove Qdrant can read
the segments inside. qdrant-edge (``qdrant-edge-py``, the optional extra
``seawall[edge]``) is Qdrant's storage engine embedded in Python: we unpack
each shard with ``EdgeShard.unpack_snapshot``, open it with
``EdgeShard.load``, count the points exactly, compare the total with the
points count recorded at backup time, and search each sample vector
recorded at backup time (the point itself must come back).

Disk, not memory: each artifact is decoded to a temporary file, and for a
collection snapshot each shard directory is re-rooted into its own tar
(streamed member by member) before unpacking, one shard at a time. Peak
temporary disk use is about the snapshot size plus one shard unpacked
(``TMPDIR`` chooses where).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seawall.catalog.models import Manifest
from seawall.context import Context
from seawall.errors import ConfigError, VerificationError
from seawall.log import get_logger
from seawall.pipeline.decode import decode_to
from seawall.qdrant import scratch
from seawall.qdrant.sample import Query, label, recorded_tops, sample_found, sample_vectors
from seawall.storage.base import Storage

log = get_logger("qdrant.deep")


def manifest_tops(manifest: Manifest) -> dict[tuple[str, str | None], list[str]]:
    """(point id, vector name) -> top hits the live collection gave at backup time."""
    return recorded_tops(manifest.qdrant.sample if manifest.qdrant else None)


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError:
        raise ConfigError(
            "verify --deep needs qdrant-edge-py (Qdrant's storage engine): "
            "pip install 'seawall[edge]'"
        ) from None
    return qdrant_edge


def sample_queries(manifest: Manifest) -> list[Query]:
    """(point id, vector, vector name) for each vector of each recorded sample point."""
    return sample_vectors(manifest.qdrant.sample if manifest.qdrant else None)


def _edge_vector(qe: Any, vector: Any) -> Any:
    if isinstance(vector, dict):  # sparse: {"indices", "values"}
        return qe.SparseVector(vector["indices"], vector["values"])
    return vector


class _FileSink:
    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.hash.update(data)
        return len(data)


def _shard_tars(collection_tar: Path, work: Path) -> list[tuple[int, Path]]:
    """Re-root each local shard directory ``N/`` of a collection snapshot into ``shardN.tar``."""
    outs: dict[int, tarfile.TarFile] = {}
    local: dict[int, bool] = {}
    try:
        with tarfile.open(collection_tar, mode="r|") as outer:
            for member in outer:
                head, _, rest = member.name.lstrip("./").partition("/")
                if not head.isdigit() or not rest:
                    continue
                sid = int(head)
                if sid not in outs:
                    outs[sid] = tarfile.open(work / f"shard{sid}.tar", "w")  # noqa: SIM115
                data = outer.extractfile(member) if member.isfile() else None
                if rest == "replica_state.json" and data is not None:
                    raw = data.read(1024 * 1024)
                    local[sid] = bool(json.loads(raw).get("is_local", True))
                    data = io.BytesIO(raw)
                member.name = rest
                outs[sid].addfile(member, data)
    finally:
        for out in outs.values():
            out.close()
    return [(sid, work / f"shard{sid}.tar") for sid in sorted(outs) if local.get(sid, True)]


Found = dict[tuple[str, str | None], set[str]]


def _load_shard(qe: Any, shard_tar: Path, work: Path, queries: list[Query]) -> tuple[int, Found]:
    """(points count, (sample point id, vector name) -> ids of the top hits in this shard)."""
    target = work / (shard_tar.stem + ".d")
    try:
        qe.EdgeShard.unpack_snapshot(str(shard_tar), str(target))
    except Exception as exc:
        raise VerificationError(f"qdrant-edge could not unpack {shard_tar.stem}: {exc}") from exc
    shard_tar.unlink()
    try:
        try:
            shard = qe.EdgeShard.load(str(target))
        except Exception as exc:
            raise VerificationError(f"qdrant-edge could not load {shard_tar.stem}: {exc}") from exc
        try:
            count = int(shard.count(qe.CountRequest(exact=True)))
            found: Found = {}
            for pid, vector, using in queries:
                try:
                    hits = shard.query(
                        qe.QueryRequest(
                            limit=3, query=qe.Query.Nearest(_edge_vector(qe, vector), using)
                        )
                    )
                except Exception as exc:
                    raise VerificationError(
                        f"sample search in {shard_tar.stem} failed: {exc}"
                    ) from exc
                found.setdefault((str(pid), using), set()).update(str(h.id) for h in hits)
            return count, found
        finally:
            shard.close()
    finally:
        shutil.rmtree(target, ignore_errors=True)


def deep_check(
    ctx: Context, storage: Storage, manifest: Manifest, key_of: Callable[[str], str]
) -> list[str]:
    """Load every shard with qdrant-edge; raise VerificationError on a mismatch."""
    qe = _edge()
    if manifest.kind == "full-storage":
        return ["deep: skipped (full-storage archives: verify the collection backups deeply)"]
    queries = sample_queries(manifest)
    total = 0
    # (sample point id, vector name) -> top hits over every shard (the global top
    # hits are among them)
    found: Found = {}
    shards = 0
    for art in manifest.artifacts:
        with scratch.directory("deep") as work:
            decoded = work / "artifact.tar"
            with decoded.open("wb") as fh:
                sink = _FileSink(fh)
                decode_to(
                    storage,
                    key_of(art.name),
                    sink,
                    ctx.keys,
                    expected_sha256=art.sha256,
                    expected_size=art.stored_size,
                )
            if art.raw_sha256 and sink.hash.hexdigest() != art.raw_sha256:
                raise VerificationError(f"{art.name}: decoded sha256 differs from the manifest")
            if manifest.kind == "shard-snapshot":
                tars = [(int(getattr(art, "shard_id", 0) or 0), decoded)]
            else:
                tars = _shard_tars(decoded, work)
                decoded.unlink()
            for _sid, shard_tar in tars:
                count, hits = _load_shard(qe, shard_tar, work, queries)
                total += count
                for key, ids in hits.items():
                    found.setdefault(key, set()).update(ids)
                shards += 1
    checks = [
        f"deep: {shards} shard(s) loaded with qdrant-edge (segment data checked), {total} points"
    ]
    expected = manifest.qdrant.points_count if manifest.qdrant else None
    if expected is not None:
        if total != expected:
            raise VerificationError(
                f"deep: segment data holds {total} points, the backup recorded {expected}"
                " (writes during the snapshot can explain a small difference)"
            )
        checks.append(f"deep: points count {total} matches the manifest")
    tops = manifest_tops(manifest)
    missing = [
        label(pid, using)
        for pid, _v, using in queries
        if not sample_found(pid, found.get((str(pid), using), ()), tops.get((str(pid), using)))
    ]
    if missing:
        raise VerificationError(
            f"deep: sample point(s) {missing} not found by searching their own vectors"
        )
    if queries:
        checks.append(f"deep: {len(queries)} sample search(es) found their points")
    return checks
