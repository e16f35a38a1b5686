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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from seawall.catalog.models import Manifest
from seawall.context import Context
from seawall.errors import ConfigError, VerificationError
from seawall.log import get_logger
from seawall.pipeline.decode import decode_to
from seawall.qdrant import scratch
from seawall.storage.base import Storage

log = get_logger("qdrant.deep")


def recorded_tops(manifest: Manifest) -> dict[str, list[str]]:
    """Point id -> ids of the top hits the live collection gave its vector at backup time."""
    sample = (manifest.qdrant.sample if manifest.qdrant else None) or {}
    return {
        str(p.get("id")): [str(i) for i in p["top"]]
        for p in sample.get("points", [])
        if isinstance(p, dict) and isinstance(p.get("top"), list) and p["top"]
    }


def sample_found(pid: Any, hits: Iterable[Any], recorded_top: list[str] | None) -> bool:
    """Did a search by a sample point's vector answer as it should?

    The point among its own top hits is the usual proof. It is not a law:
    with ``Dot`` distance a longer vector in the same direction outscores the
    point itself, and duplicated embeddings tie beyond the search's limit. So
    the answer the live collection gave at backup time (``top``) also counts:
    every one of those ids must come back. A point that is really gone fails
    both (its id was in ``top``, or ``top`` names ids it cannot return).
    """
    got = {str(h) for h in hits}
    if str(pid) in got:
        return True
    return bool(recorded_top) and set(recorded_top or ()) <= got


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError:
        raise ConfigError(
            "verify --deep needs qdrant-edge-py (Qdrant's storage engine): "
            "pip install 'seawall[edge]'"
        ) from None
    return qdrant_edge


def sample_queries(manifest: Manifest) -> list[tuple[Any, list[float], str | None]]:
    """(point id, vector, vector name) for each recorded sample point."""
    return sample_vectors(manifest.qdrant.sample if manifest.qdrant else None)


def sample_vectors(sample: dict[str, Any] | None) -> list[tuple[Any, list[float], str | None]]:
    """(point id, vector, vector name) for each point of a sample (first named vector)."""
    out: list[tuple[Any, list[float], str | None]] = []
    for point in (sample or {}).get("points", []):
        vector = point.get("vector")
        if isinstance(vector, list) and vector and all(isinstance(x, int | float) for x in vector):
            out.append((point["id"], [float(x) for x in vector], None))
        elif isinstance(vector, dict):
            for name, value in sorted(vector.items()):
                if (
                    isinstance(value, list)
                    and value
                    and all(isinstance(x, int | float) for x in value)
                ):
                    out.append((point["id"], [float(x) for x in value], name))
                    break
    return out


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


def _load_shard(
    qe: Any, shard_tar: Path, work: Path, queries: list[tuple[Any, list[float], str | None]]
) -> tuple[int, dict[str, set[str]]]:
    """(points count, sample point id -> ids of the top hits of its vector in this shard)."""
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
            found: dict[str, set[str]] = {}
            for pid, vector, using in queries:
                try:
                    hits = shard.query(
                        qe.QueryRequest(limit=3, query=qe.Query.Nearest(vector, using))
                    )
                except Exception as exc:
                    raise VerificationError(
                        f"sample search in {shard_tar.stem} failed: {exc}"
                    ) from exc
                found.setdefault(str(pid), set()).update(str(h.id) for h in hits)
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
    # sample point id -> top hits over every shard (the global top hits are among them)
    found: dict[str, set[str]] = {}
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
                for pid, ids in hits.items():
                    found.setdefault(pid, set()).update(ids)
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
    tops = recorded_tops(manifest)
    missing = [
        pid
        for pid, _v, _u in queries
        if not sample_found(pid, found.get(str(pid), ()), tops.get(str(pid)))
    ]
    if missing:
        raise VerificationError(
            f"deep: sample point(s) {missing} not found by searching their own vectors"
        )
    if queries:
        checks.append(f"deep: {len(queries)} sample search(es) found their points")
    return checks
