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
   ``serve_big_snapshots``), and the restore upload of the same artifact,
   ``age -d | zstd -d | curl -F`` against ``seawall qdrant restore``.
   Interleaved rounds, medians, peak RSS; seawall's own log splits its
   transfer from the rest (see :func:`transfer_rows`).
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import json
import os
import random
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import measure, peers
from bench.context import REPO, Context
from bench.measure import median
from bench.report import Row, apply_baseline
from bench.suites.common import RssMode, largest_file, repeat_row

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

    ctx.age_keys()  # made early: the transfer rows need them
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
    return rows + transfer_rows(ctx, server, name, reps)


@dataclass
class Tool:
    """One command of the interleaved rounds and what its row needs."""

    name: str
    attempt: Callable[[int], measure.RunResult]
    group: str  # "download" or "restore": rows of a group share a baseline
    baseline: bool = False
    rss: RssMode = "max"
    artifact: Callable[[], int | None] | None = None
    results: list[measure.RunResult | BaseException] = field(default_factory=list)


def log_seconds(path: Path, message: str) -> float | None:
    """Sum of ``seconds`` of seawall's JSON log lines with this message."""
    total: float | None = None
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict) and rec.get("msg") == message and "seconds" in rec:
                total = (total or 0.0) + float(rec["seconds"])
    return total


def transfer_rows(ctx: Context, server: Any, name: str, reps: int) -> list[Row]:
    """Backup (download+store) and restore (upload) against the shell pipelines.

    Every round runs each command once, in the same order, so a burst of
    load from elsewhere hits all of them alike; rows report medians. seawall
    does more than the pipelines, and its own log splits that out:

    - backup: it also asks Qdrant to create (and later delete) the snapshot,
      reads the collection's config, count and a sample; the pipelines
      download an existing snapshot. The "download+store only" row is the
      transfer measured by seawall itself ("snapshot downloaded and stored":
      first request to fsync + rename), i.e. the pipeline's work plus two
      sha256 (the server's checksum, the stored bytes' for the manifest).
    - restore: both upload the same artifact and wait for the server's
      recovery; seawall also checks versions before and the points count
      and sample searches after (its "upload+recover only" row).
    """
    keyfile, recipient = ctx.age_keys()
    url = f"{server.url}/collections/{COLLECTION}/snapshots/{name}"
    curl = ["curl", "-sS", "-f", url]
    out = ctx.tmpdir("qdrant-dl") / "snapshot.out"
    sw_root = ctx.tmpdir("qdrant-seawall")
    logs = ctx.tmpdir("qdrant-logs")
    unavailable = ctx.seawall_unavailable("qdrant", "backup")
    transfer: dict[str, list[float]] = {}
    created: dict[str, list[float]] = {}

    sizes: dict[str, int] = {}

    def pipe(key: str, stages: list[list[str]]) -> Callable[[int], measure.RunResult]:
        def attempt(i: int) -> measure.RunResult:
            res = measure.run([curl, *stages], stdout_path=out, timeout=900)
            sizes[key] = out.stat().st_size
            out.unlink()
            return res

        return attempt

    def pipe_durable(key: str, stages: list[list[str]]) -> Callable[[int], measure.RunResult]:
        """The same pipeline, then ``sync FILE`` (fsync): seawall reports a
        backup only once its file is durable; the plain pipeline leaves it
        in the page cache, which on this disk hides ~2 s per 2 GiB."""
        script = (
            " | ".join(shlex.join(stage) for stage in [curl, *stages])
            + f" > {shlex.quote(str(out))} && sync {shlex.quote(str(out))}"
        )

        def attempt(i: int) -> measure.RunResult:
            res = measure.run([["sh", "-c", script]], timeout=900)
            sizes[key] = out.stat().st_size
            out.unlink()
            return res

        return attempt

    def out_size(key: str) -> Callable[[], int | None]:
        return lambda: sizes.get(key)

    def sw_backup(compression: str) -> Callable[[int], measure.RunResult]:
        target = sw_root / compression
        env = ctx.seawall_env(target, QDRANT_URL=server.url, COMPRESSION=compression)

        def attempt(i: int) -> measure.RunResult:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            log_file = logs / f"backup-{compression}-{i}.log"
            res = measure.run(
                [[*ctx.seawall_cmd(), "qdrant", "backup", COLLECTION]],
                env={**env, "LOG_FILE": str(log_file)},
                timeout=900,
            )
            if res.ok:
                for key, msg, store in (
                    (compression, "snapshot downloaded and stored", transfer),
                    (compression, "snapshot created", created),
                ):
                    value = log_seconds(log_file, msg)
                    if value is not None:
                        store.setdefault(key, []).append(value)
            return res

        return attempt

    def stored_artifact() -> Path:
        best = largest_file(sw_root / "zstd")
        if best is None:
            raise FileNotFoundError("no seawall zstd backup to restore from")
        return best

    upload = f"{server.url}/collections/restored-pipe/snapshots/upload?priority=snapshot"

    def pipe_restore(i: int) -> measure.RunResult:
        """``age -d | zstd -d | curl -F snapshot=@-``: curl reads stdin into
        memory first (its RSS is the snapshot's size), and curl 7.88 refuses
        more than 2 GiB that way."""
        try:
            return measure.run(
                [
                    ["age", "-d", "-i", str(keyfile), str(stored_artifact())],
                    ["zstd", "-d", "-q", "-c"],
                    ["curl", "-sS", "-f", "-F", "snapshot=@-", upload],
                ],
                timeout=900,
            )
        finally:
            with contextlib.suppress(Exception):
                server.delete_collection("restored-pipe")

    def pipe_restore_file(i: int) -> measure.RunResult:
        """The same through a decoded temporary file (works at any size)."""
        tmp = sw_root / "decoded.snapshot"
        script = (
            f"age -d -i {shlex.quote(str(keyfile))} {shlex.quote(str(stored_artifact()))} "
            f"| zstd -d -q -c > {shlex.quote(str(tmp))} && "
            f"curl -sS -f -F snapshot=@{shlex.quote(str(tmp))} {shlex.quote(upload)}"
            f"; rc=$?; rm -f {shlex.quote(str(tmp))}; exit $rc"
        )
        try:
            return measure.run([["sh", "-c", script]], timeout=900)
        finally:
            with contextlib.suppress(Exception):
                server.delete_collection("restored-pipe")

    def sw_restore(i: int) -> measure.RunResult:
        env = ctx.seawall_env(sw_root / "zstd", QDRANT_URL=server.url)
        log_file = logs / f"restore-{i}.log"
        try:
            res = measure.run(
                [[*ctx.seawall_cmd(), "qdrant", "restore", "latest", "--to", "restored-sw"]],
                env={**env, "LOG_FILE": str(log_file)},
                timeout=900,
            )
        finally:
            with contextlib.suppress(Exception):
                server.delete_collection("restored-sw")
        value = log_seconds(log_file, "snapshot uploaded and recovered")
        if res.ok and value is not None:
            transfer.setdefault("restore", []).append(value)
        return res

    def sw_size(compression: str) -> Callable[[], int | None]:
        def size() -> int | None:
            best = largest_file(sw_root / compression)
            return best.stat().st_size if best else None

        return size

    tools = [
        Tool(
            "download snapshot: curl > file",
            pipe("curl", []),
            "download",
            artifact=out_size("curl"),
        ),
        Tool(
            "download: curl | zstd -3 -T0 | age",
            pipe("zstd3", [peers.ZSTD, peers.age_encrypt(recipient)]),
            "download",
            baseline=True,
            artifact=out_size("zstd3"),
        ),
        Tool(
            "download: curl | zstd -1 -T0 | age (seawall's qdrant level)",
            pipe("zstd1", [["zstd", "-1", "-T0", "-q", "-c"], peers.age_encrypt(recipient)]),
            "download",
            artifact=out_size("zstd1"),
        ),
        Tool(
            "download: curl | age",
            pipe("age", [peers.age_encrypt(recipient)]),
            "download",
            artifact=out_size("age"),
        ),
        Tool(
            "download: curl | zstd -1 -T0 | age > file && sync file (durable)",
            pipe_durable(
                "zstd1-sync", [["zstd", "-1", "-T0", "-q", "-c"], peers.age_encrypt(recipient)]
            ),
            "download",
            artifact=out_size("zstd1-sync"),
        ),
        Tool(
            "download: curl | age > file && sync file (durable)",
            pipe_durable("age-sync", [peers.age_encrypt(recipient)]),
            "download",
            artifact=out_size("age-sync"),
        ),
    ]
    if not unavailable:
        tools += [
            Tool(
                f"seawall qdrant backup ({c}+age), whole command",
                sw_backup(c),
                "download",
                rss="root",
                artifact=sw_size(c),
            )
            for c in ("zstd", "none")
        ]
        tools.append(
            Tool(
                "restore: age -d | zstd -d > tmp; curl -F snapshot=@tmp",
                pipe_restore_file,
                "restore",
                baseline=True,
                rss="root",  # sh: the note lists age, zstd and curl
            )
        )
        if ctx.opts.qdrant_snapshot_mb < 2047:
            tools.append(Tool("restore: age -d | zstd -d | curl -F @-", pipe_restore, "restore"))
        tools.append(
            Tool("seawall qdrant restore, whole command", sw_restore, "restore", rss="root")
        )
    for i in range(reps):
        for tool in tools:
            try:
                tool.results.append(tool.attempt(i))
            except Exception as exc:  # reported in the row, the others go on
                tool.results.append(exc)
        ctx.log(f"qdrant: transfer round {i + 1}/{reps} done (load {os.getloadavg()[0]:.1f})")

    groups: dict[str, list[Row]] = {"download": [], "restore": []}
    for tool in tools:

        def replay(i: int, tool: Tool = tool) -> measure.RunResult:
            item = tool.results[i]
            if isinstance(item, BaseException):
                raise item
            return item

        groups[tool.group].append(
            repeat_row(
                SUITE,
                tool.name,
                replay,
                len(tool.results),
                rss=tool.rss,
                artifact=tool.artifact,
                baseline=tool.baseline,
            )
        )
    for c in ("zstd", "none"):
        if transfer.get(c):
            note = f"seawall's own timing; server-side create median {median(created[c]):.2f}s"
            groups["download"].append(
                Row(
                    suite=SUITE,
                    tool=f"seawall qdrant backup ({c}+age): download+store only",
                    median_s=median(transfer[c]),
                    samples=transfer[c],
                    notes=note if created.get(c) else "seawall's own timing",
                )
            )
    if transfer.get("restore"):
        groups["restore"].append(
            Row(
                suite=SUITE,
                tool="seawall qdrant restore: upload+recover only",
                median_s=median(transfer["restore"]),
                samples=transfer["restore"],
                notes="seawall's own timing; without version check, count and sample searches",
            )
        )
    if ctx.opts.qdrant_snapshot_mb >= 2047:
        groups["restore"].append(
            Row(
                suite=SUITE,
                tool="restore: age -d | zstd -d | curl -F @-",
                notes="not run: curl buffers stdin in memory and refuses more than 2 GiB "
                "(curl 7.88: 'option -F: is badly used here')",
            )
        )
    if unavailable:
        groups["download"].append(Row(suite=SUITE, tool="seawall qdrant", notes=unavailable))
    for group in groups.values():
        apply_baseline(group)
    return groups["download"] + groups["restore"]
