"""Qdrant snapshots (issue 6): is zstd worth it on vectors, and download/store cost.

1. Compression of realistic vector data: float32 vectors drawn from a normal
   distribution (what embedding dimensions look like; the mantissas are
   noise), and, if the Qdrant test server is there, a real snapshot archive
   of a collection built by qdrant-edge. Reported: ratio and time for zstd
   levels, so the default (compress or not) is chosen from a measurement.
2. Download and store of a big snapshot (default 2 GiB) served by
   ``tests.qdrant_server`` over loopback: ``curl | zstd | age`` and
   ``curl | age`` against ``seawall qdrant backup`` (which also asks the
   server to create and then delete the snapshot; see
   ``serve_big_snapshots``). The restore (upload) side is not benchmarked yet.
"""

from __future__ import annotations

import array
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import measure, peers
from bench.context import REPO, Context
from bench.report import Row, apply_baseline
from bench.suites.common import largest_file, repeat_row

SUITE = "qdrant"
COLLECTION = "bench"


def write_vectors(path: Path, count: int, dim: int, seed: int = 3) -> int:
    """Little-endian float32 N(0, 1/sqrt(dim)) vectors, streamed in chunks."""
    rng = random.Random(seed)
    sigma = dim**-0.5
    with path.open("wb") as fh:
        for start in range(0, count, 1000):
            n = min(1000, count - start)
            chunk = array.array("f", (rng.gauss(0.0, sigma) for _ in range(n * dim)))
            chunk.tofile(fh)
    return path.stat().st_size


def compression_rows(ctx: Context, label: str, data: Path, reps: int) -> list[Row]:
    rows: list[Row] = []
    size = data.stat().st_size
    out = ctx.root / "qdrant-comp.out"
    rows.append(
        repeat_row(
            SUITE,
            f"{label}: cat (no compression)",
            lambda i: measure.run([["cat", str(data)]], stdout_path=out, timeout=600),
            reps,
            artifact=lambda: size,
            baseline=True,
        )
    )
    for level in ("1", "3", "9"):
        row = repeat_row(
            SUITE,
            f"{label}: zstd -{level} -T0",
            lambda i, lv=level: measure.run(  # type: ignore[misc]
                [["zstd", f"-{lv}", "-T0", "-q", "-c", str(data)]], stdout_path=out, timeout=600
            ),
            reps,
            artifact=lambda: out.stat().st_size,
        )
        if row.artifact_bytes:
            ratio = f"ratio {size / row.artifact_bytes:.3f}x of {size / 2**20:.0f} MiB"
            row.notes = "; ".join(n for n in (ratio, row.notes) if n)
            row.extra["ratio"] = size / row.artifact_bytes
        rows.append(row)
    out.unlink(missing_ok=True)
    apply_baseline(rows)
    return rows


def _import_server() -> Any:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.qdrant_server import QdrantTestServer

    return QdrantTestServer


def real_snapshot(ctx: Context, server: Any, points: int, dim: int) -> Path:
    """Create a collection on the test server, snapshot it, download it."""
    name = "vectors"
    server.create_collection(name, dim=dim, distance="Cosine", points=points, seed=1)
    with httpx.Client(base_url=server.url, timeout=600) as client:
        r = client.post(f"/collections/{name}/snapshots", params={"wait": "true"})
        r.raise_for_status()
        snap = r.json()["result"]["name"]
        dest = ctx.root / "qdrant-real.snapshot"
        with (
            client.stream("GET", f"/collections/{name}/snapshots/{snap}") as resp,
            dest.open("wb") as fh,
        ):
            resp.raise_for_status()
            for chunk in resp.iter_bytes(1 << 20):
                fh.write(chunk)
        client.delete(f"/collections/{name}/snapshots/{snap}")
    server.delete_collection(name)
    return dest


def big_file(src: Path, dest: Path, size_mb: int) -> None:
    """``size_mb`` MiB made of copies of ``src`` (vector data, not zeros)."""
    target = size_mb * 2**20
    chunk = src.read_bytes()
    with dest.open("wb") as fh:
        written = 0
        while written < target:
            piece = chunk[: target - written]
            fh.write(piece)
            written += len(piece)


def serve_big_snapshots(collection: str, payload: Path, work: Path) -> Callable[[], None]:
    """Make the test server's snapshots of ``collection`` big; returns an undo.

    The test server (running in this process) builds a snapshot from the
    collection's qdrant-edge shards; a 2 GiB collection would take far too
    long to build point by point. So its snapshot writer is wrapped: for
    ``collection`` it builds the real small archive once, appends ``payload``
    as an extra segment file (a valid tar in Qdrant's layout, just big), and
    then hard-links that file for every snapshot request. Everything else of
    the server (HTTP, Range, checksums, delete) is unchanged, and seawall and
    curl download the very same bytes.
    """
    import tarfile

    archive: Any = sys.modules["tests.qdrant_server.archive"]
    original = archive.write_collection_snapshot
    built: dict[str, tuple[Path, int, str]] = {}

    def writer(path: Path, meta: Any, node: Any, version: str) -> tuple[int, str]:
        if meta.name != collection:
            return original(path, meta, node, version)  # type: ignore[no-any-return]
        if "big" not in built:
            small = work / "small.snapshot"
            original(small, meta, node, version)
            big = work / "big.snapshot"
            with (
                tarfile.open(small) as src,
                tarfile.open(big, "w", format=tarfile.GNU_FORMAT) as dst,
            ):
                for member in src:
                    dst.addfile(member, src.extractfile(member) if member.isfile() else None)
                info = tarfile.TarInfo("0/segments/bench-vectors.bin")
                info.size = payload.stat().st_size
                with payload.open("rb") as fh:
                    dst.addfile(info, fh)
            small.unlink()
            digest = hashlib.sha256()
            with big.open("rb") as fh:
                while block := fh.read(8 << 20):
                    digest.update(block)
            built["big"] = (big, big.stat().st_size, digest.hexdigest())
        big, size, sha = built["big"]
        path.unlink(missing_ok=True)
        os.link(big, path)
        return size, sha

    archive.write_collection_snapshot = writer

    def undo() -> None:
        archive.write_collection_snapshot = original

    return undo


def create_snapshot(url: str, collection: str) -> str:
    with httpx.Client(base_url=url, timeout=900) as client:
        r = client.post(f"/collections/{collection}/snapshots", params={"wait": "true"})
        r.raise_for_status()
        return str(r.json()["result"]["name"])


def run(ctx: Context) -> list[Row]:
    reps = ctx.opts.repeat
    dim = ctx.opts.vector_dim
    vec = ctx.root / "vectors.f32"
    t0 = time.monotonic()
    write_vectors(vec, ctx.opts.vectors, dim)
    ctx.log(f"qdrant: {ctx.opts.vectors} x {dim} float32 vectors in {time.monotonic() - t0:.0f}s")
    rows = compression_rows(ctx, f"{ctx.opts.vectors}x{dim} float32", vec, reps)

    try:
        server_cls = _import_server()
    except ImportError as exc:
        rows.append(
            Row(
                suite=SUITE,
                tool="snapshot download/store",
                notes=f"skipped: tests.qdrant_server not importable ({exc})",
            )
        )
        return rows

    _, recipient = ctx.age_keys()
    server = server_cls()
    server.start()
    ctx.defer(server.stop)
    try:
        t0 = time.monotonic()
        snap = real_snapshot(ctx, server, points=20_000, dim=dim)
        ctx.log(
            f"qdrant: real snapshot {snap.stat().st_size >> 20} MiB in {time.monotonic() - t0:.0f}s"
        )
        rows += compression_rows(ctx, "qdrant-edge snapshot 20k x 384", snap, reps)
        snap.unlink()
    except Exception as exc:  # the test server is someone else's moving target
        rows.append(
            Row(
                suite=SUITE,
                tool="real snapshot compression",
                notes=f"skipped: {type(exc).__name__}: {str(exc)[:160]}",
            )
        )

    size_mb = ctx.opts.qdrant_snapshot_mb
    big = ctx.root / "big.snapshot"
    big_file(vec, big, size_mb)
    vec.unlink()
    server.create_collection(COLLECTION, dim=dim, distance="Cosine", points=100, seed=1)
    ctx.defer(serve_big_snapshots(COLLECTION, big, ctx.tmpdir("qdrant-big")))
    t0 = time.monotonic()
    name = create_snapshot(server.url, COLLECTION)  # builds the big archive once
    big.unlink()
    ctx.log(f"qdrant: {size_mb} MiB snapshot archive built in {time.monotonic() - t0:.0f}s")
    url = f"{server.url}/collections/{COLLECTION}/snapshots/{name}"
    curl = ["curl", "-sS", "-f", url]
    out = ctx.tmpdir("qdrant-dl") / "snapshot.out"
    dl_rows: list[Row] = []
    dl_rows.append(
        repeat_row(
            SUITE,
            "download snapshot: curl > file",
            lambda i: measure.run([curl], stdout_path=out, timeout=600),
            reps,
            artifact=lambda: out.stat().st_size,
        )
    )
    dl_rows.append(
        repeat_row(
            SUITE,
            "download: curl | zstd -3 -T0 | age",
            lambda i: measure.run(
                [curl, peers.ZSTD, peers.age_encrypt(recipient)], stdout_path=out, timeout=600
            ),
            reps,
            artifact=lambda: out.stat().st_size,
            baseline=True,
        )
    )
    dl_rows.append(
        repeat_row(
            SUITE,
            "download: curl | age",
            lambda i: measure.run(
                [curl, peers.age_encrypt(recipient)], stdout_path=out, timeout=600
            ),
            reps,
            artifact=lambda: out.stat().st_size,
        )
    )
    out.unlink(missing_ok=True)
    sw_dir = ctx.tmpdir("qdrant-seawall")
    for compression in ("zstd", "none"):
        env = ctx.seawall_env(sw_dir, QDRANT_URL=server.url, COMPRESSION=compression)

        def sw(i: int, env: dict[str, str] = env) -> measure.RunResult:
            for child in sw_dir.iterdir():
                measure.run([["rm", "-rf", str(child)]], sample_interval=None)
            return measure.run(
                [[*ctx.seawall_cmd(), "qdrant", "backup", COLLECTION]], env=env, timeout=900
            )

        def sw_artifact() -> int | None:
            best = largest_file(sw_dir)
            return best.stat().st_size if best else None

        row = repeat_row(
            SUITE,
            f"seawall qdrant backup ({compression}+age)",
            sw,
            reps,
            rss="root",
            artifact=sw_artifact,
            unavailable=ctx.seawall_unavailable("qdrant", "backup"),
        )
        if row.median_s is not None:
            row.notes = "; ".join(
                n for n in ("includes snapshot create + delete on the server", row.notes) if n
            )
        dl_rows.append(row)
    dl_rows.append(
        Row(
            suite=SUITE,
            tool="restore upload (age -d | curl -F vs seawall)",
            notes="not measured yet",
        )
    )
    apply_baseline(dl_rows)
    return rows + dl_rows
