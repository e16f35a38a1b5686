"""Local ``decode_to``: the spool against the sha256 pre-pass it replaced, interleaved.

``python -m bench.decode_compare [--repeat N]``: one process, a local
repository in /tmp, two age X25519 + zstd artifacts (raw 17 MiB and 100 MiB,
a quarter random); each round runs both ways in alternating order into a
sink that drops the bytes. "prepass" is what ``decode_to`` did before the
spool (size check, a sha256 pass over the file, then a second read that
decodes and hashes again); "spool" is ``decode_to`` now (one read into the
spool, then decode from it). Prints the medians: the local restore must not
get slower (issue 14).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seawall.pipeline import KeyRing, PipelineSpec, decode_to, store_stream
from seawall.pipeline.decode import check_stored_size, sha256_of
from seawall.pipeline.keys import generate_identity
from seawall.storage.local import LocalStorage

MB = 1 << 20


class _Drop:
    def write(self, data: bytes) -> int:
        return len(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    opts = parser.parse_args()
    secret, public = generate_identity()
    keys = KeyRing.build(recipients=[public], identity=secret)
    root = Path(tempfile.mkdtemp(prefix="seawall-decode-compare-", dir="/tmp"))
    try:
        storage = LocalStorage(root)
        for mb in (17, 100):
            key = f"a{mb}"
            raw = b"".join(os.urandom(64 << 10) + bytes(192 << 10) for _ in range(mb * 4))
            spec = PipelineSpec(compression="zstd", keys=keys)
            res = store_stream(io.BytesIO(raw), storage, key, spec)
            del raw

            def spool(key: str = key, sha: str = res.sha256, size: int = res.stored_size) -> None:
                decode_to(storage, key, _Drop(), keys, expected_sha256=sha, expected_size=size,
                          compression="zstd")  # fmt: skip

            def prepass(key: str = key, sha: str = res.sha256, size: int = res.stored_size) -> None:
                check_stored_size(storage, key, size)
                assert sha256_of(storage, key)[0] == sha
                decode_to(storage, key, _Drop(), keys, expected_sha256=sha, compression="zstd",
                          precheck=False)  # fmt: skip

            ways: list[tuple[str, Callable[[], None]]] = [("prepass", prepass), ("spool", spool)]
            times: dict[str, list[float]] = {name: [] for name, _ in ways}
            for i in range(opts.repeat):
                for name, run in ways if i % 2 == 0 else ways[::-1]:
                    started = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - started)
            print(
                f"stored {res.stored_size / MB:.1f} MiB (raw {mb} MiB), n={opts.repeat}: "
                + ", ".join(
                    f"{k} median {statistics.median(v) * 1000:.0f} ms (min {min(v) * 1000:.0f})"
                    for k, v in times.items()
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
