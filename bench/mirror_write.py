"""What a mirror costs a backup: one artifact stored through the pipeline with no
mirror, a local mirror and an S3 mirror (SeaweedFS, tests/support/s3server.py).

``python -m bench.mirror_write [--mb 256] [--repeat 3]`` prints the median wall
time of ``store_stream`` (zstd level 1 over incompressible bytes, as an
encrypted dump behaves) into a local primary, then of the same call through
``MirroredStorage`` — the primary's commit plus the copy after it (read back,
sha256, the mirror's atomic write). The difference is the price of
copy-after-commit (docs/object-storage.md, "Mirrors and sync").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seawall.pipeline import PipelineSpec, store_stream
from seawall.storage.factory import open_repository


def _time(fn: Callable[[], None], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.mirror_write")
    p.add_argument("--mb", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-s3", action="store_true")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seawall-bench-mirror-", dir="/tmp"))
    src = work / "payload"
    with open(src, "wb") as fh:
        for _ in range(args.mb):
            fh.write(os.urandom(1 << 20))
    spec = PipelineSpec(compression="zstd", level=1)
    n = 0

    def store(mirrors: list[str], env: dict[str, str] | None = None) -> Callable[[], None]:
        def run() -> None:
            nonlocal n
            n += 1
            repo = open_repository(str(work / "primary"), mirrors, env=env)
            with open(src, "rb") as fh:
                store_stream(fh, repo, f"postgresql/logical/bench/{n:04d}/dump.bin.zst", spec)

        return run

    rows = [("primary only", _time(store([]), args.repeat))]
    rows.append(("+ local mirror", _time(store([str(work / "mirror")]), args.repeat)))
    server = None
    try:
        if not args.no_s3:
            from tests.support.s3server import S3Server

            server = S3Server(work / "s3")
            (work / "s3").mkdir()
            server.start()
            server.client().create_bucket(Bucket="bench")
            env = {
                "AWS_ENDPOINT_URL": server.endpoint,
                "AWS_ACCESS_KEY_ID": server.access_key,
                "AWS_SECRET_ACCESS_KEY": server.secret_key,
                "AWS_REGION": "us-east-1",
            }
            rows.append(("+ S3 mirror", _time(store(["s3://bench/repo"], env), args.repeat)))
    finally:
        if server is not None:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0][1]
    print(f"store_stream of {args.mb} MiB (zstd 1, incompressible), median of {args.repeat}:")
    for name, secs in rows:
        print(f"  {name:<16} {secs:7.2f} s  {args.mb / secs:7.1f} MiB/s  x{secs / base:.2f}")


if __name__ == "__main__":
    main()
