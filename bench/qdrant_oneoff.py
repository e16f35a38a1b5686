"""One-off measurement: Qdrant snapshot download+store and restore upload,
seawall vs the shell pipelines (curl | zstd -T0 | age), on real segment data
(float32 vectors of dim 768 in qdrant-edge shards of the test server).

Run from the repo root:  PYTHONPATH=. [REPS=3] .venv/bin/python bench/qdrant_oneoff.py [POINTS]

seawall's own log splits its backup into the server-side create and the
download+store (the part comparable to the pipelines).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.getcwd())
from tests.qdrant_server import QdrantTestServer
from tests.qdrant_server.storage import PointData

POINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
REPS = int(os.environ.get("REPS", "3"))
DIM = 768
SEAWALL = str(Path(sys.executable).parent / "seawall")


def timed(cmd: str | list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS KiB of the largest process, stderr) via GNU time."""
    shell = isinstance(cmd, str)
    full = ["/usr/bin/time", "-v", "bash", "-c", cmd] if shell else ["/usr/bin/time", "-v", *cmd]
    t0 = time.monotonic()
    res = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{res.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))  # type: ignore[union-attr]
    return wall, rss, res.stderr


def log_seconds(path: Path) -> dict[str, float]:
    """``seconds`` of seawall's JSON log lines by message (create, transfer)."""
    found = {"snapshot created": 0.0, "snapshot downloaded and stored": 0.0}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") in found and "seconds" in rec:
            found[rec["msg"]] += float(rec["seconds"])
    return found


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="seawall-bench-", dir="/tmp"))
    key = work / "age.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    rng = np.random.default_rng(1)
    with QdrantTestServer() as server:
        server.create_collection("bench", DIM, distance="Cosine")
        t0 = time.monotonic()
        batch = 5000
        for start in range(0, POINTS, batch):
            n = min(batch, POINTS - start)
            vecs = rng.standard_normal((n, DIM), dtype=np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            server.upsert(
                "bench",
                [PointData(start + i, vecs[i].tolist(), {"i": start + i}) for i in range(n)],
                batch=batch,
            )
        print(f"filled {POINTS} points x {DIM} float32 in {time.monotonic() - t0:.0f}s", flush=True)
        # a kept snapshot for the shell pipelines
        import httpx

        with httpx.Client(base_url=server.url, timeout=3600) as http:
            snap = http.post("/collections/bench/snapshots").json()["result"]
        size = int(snap["size"])
        url = f"{server.url}/collections/bench/snapshots/{snap['name']}"
        print(f"snapshot {size / 1e6:.0f} MB", flush=True)
        env = {
            **os.environ,
            "QDRANT_URL": server.url,
            "BACKUP_DIR": str(work / "backups"),
            "PRUNE_AFTER_BACKUP": "false",
            "LOG_FORMAT": "json",
            "ENCRYPTION": "true",
            "ENCRYPTION_RECIPIENTS": public,
            "ENCRYPTION_IDENTITY_FILE": str(key),
        }
        out = work / "pipe.out"
        samples: dict[str, list[tuple[float, int, int]]] = {}

        def add(what: str, wall: float, rss: int, size: int) -> None:
            samples.setdefault(what, []).append((wall, rss, size))

        # Interleaved rounds (other load hits every command alike); medians below.
        for _ in range(REPS):
            for comp in ("zstd", "none"):
                e = {**env, "COMPRESSION": comp, "LOG_FILE": str(work / "sw.log")}
                (work / "sw.log").unlink(missing_ok=True)
                # seawall: create + download + compress + encrypt + store (no verify)
                wall, rss, _ = timed([SEAWALL, "-q", "qdrant", "backup", "bench", "--no-verify"], e)
                stored = sum(p.stat().st_size for p in (work / "backups").rglob("snapshot.tar*"))
                add(f"seawall qdrant backup (compression={comp}, age)", wall, rss, stored)
                split = log_seconds(work / "sw.log")
                add(f"  of which server-side create ({comp})", split["snapshot created"], 0, 0)
                add(
                    f"  of which download+store ({comp}, seawall's log)",
                    split["snapshot downloaded and stored"],
                    0,
                    stored,
                )
                shutil.rmtree(work / "backups")
                # the shell pipeline on the same snapshot (no create: it already exists)
                stage = "zstd -T0 -q |" if comp == "zstd" else ""
                wall, rss, _ = timed(f"curl -sf {url} | {stage} age -r {public} > {out}")
                add(f"curl | {'zstd -T0 | ' if stage else ''}age", wall, rss, out.stat().st_size)
                if comp == "zstd":
                    wall, rss, _ = timed(
                        f"curl -sf {url} | zstd -1 -T0 -q | age -r {public} > {out}"
                    )
                    add("curl | zstd -1 -T0 | age (seawall's level)", wall, rss, out.stat().st_size)
                out.unlink()
        # create alone (server side), to separate it from the transfer
        t0 = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=3600) as http:
            s2 = http.post("/collections/bench/snapshots").json()["result"]
            http.delete(f"/collections/bench/snapshots/{s2['name']}")
        create_s = time.monotonic() - t0
        # zstd ratio/time on the raw snapshot (levels 1 and 3)
        raw = work / "raw.snapshot"
        subprocess.run(f"curl -sf {url} -o {raw}", shell=True, check=True)
        for level in (1, 3):
            t0 = time.monotonic()
            res = subprocess.run(
                f"zstd -T0 -{level} -q -c {raw} | wc -c",
                shell=True,
                check=True,
                capture_output=True,
                text=True,
            )
            add(f"zstd -T0 -{level} alone", time.monotonic() - t0, 0, int(res.stdout))
        raw.unlink()
        # restore upload: seawall vs age -d | zstd -d | curl -F, same artifact
        e = {**env, "COMPRESSION": "zstd"}
        subprocess.run(
            [SEAWALL, "-q", "qdrant", "backup", "bench", "--no-verify"], env=e, check=True
        )
        (art,) = [p for p in (work / "backups").rglob("snapshot.tar*") if p.is_file()]
        for _ in range(REPS):
            wall, rss, _ = timed(
                [SEAWALL, "-q", "qdrant", "restore", "latest", "--to", "bench-restored"], e
            )
            add("seawall qdrant restore (decode+upload+checks)", wall, rss, 0)
            server.delete_collection("bench-restored")
            wall, rss, _ = timed(
                f"age -d -i {key} {art} | zstd -dc | curl -sf -F snapshot=@- "
                f"'{server.url}/collections/bench-pipe/snapshots/upload?priority=snapshot' > /dev/null"
            )
            add("age -d | zstd -d | curl -F (upload)", wall, rss, 0)
            server.delete_collection("bench-pipe")
    print(
        f"\nsnapshot: {size / 1e6:.0f} MB raw ({POINTS} points, dim {DIM}); "
        f"server-side create alone {create_s:.1f}s; {REPS} interleaved rounds, medians; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'what':<55} {'wall s':>8} {'peak RSS MB':>12} {'bytes out MB':>13} {'ratio':>7}")
    for what, runs in samples.items():
        wall = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        out_size = runs[-1][2]
        ratio = f"{size / out_size:.2f}" if out_size else "-"
        print(f"{what:<55} {wall:>8.2f} {rss / 1024:>12.0f} {out_size / 1e6:>13.0f} {ratio:>7}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
