"""Physical base backups (issue 4): seawall basebackup beside pg_basebackup and pgBackRest.

Baseline: the command-line pipeline ``pg_basebackup -Ft -X none | zstd | age``
(the target is "within 10%" of it). A CHECKPOINT precedes every run so no
tool pays for another's dirty buffers, and every tool asks for a fast
checkpoint (seawall's own choice is its own).

The seawall rows take turns (ADR 0019): the plain cluster (pg_basebackup
into the pipeline) and the same cluster with an empty tablespace added for
that run, which makes seawall stream ``BASE_BACKUP`` over the replication
protocol itself (the same bytes, plus one tiny tablespace artifact): the
ratio between the two is the cost of that producer.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench import measure, peers
from bench.cluster import chown_postgres
from bench.context import Context
from bench.report import Row, apply_baseline
from bench.suites.common import (
    Tool,
    interleaved_rows,
    largest_file,
    pgbackrest_local,
    repeat_row,
    stanza_create,
    tree_size,
)

SUITE = "basebackup"


def run(ctx: Context) -> list[Row]:
    cluster = ctx.cluster()
    _, recipient = ctx.age_keys()
    env = ctx.seawall_env(ctx.root) | cluster.libpq_env()
    reps = ctx.opts.repeat
    timeout = ctx.opts.timeout_s
    rows: list[Row] = []
    size = int(str(cluster.scalar("SELECT sum(pg_database_size(oid)) FROM pg_database")))
    ctx.log(f"basebackup: cluster holds {size / 2**20:.0f} MiB")

    def checkpoint() -> None:
        cluster.execute("CHECKPOINT")

    raw_dir = ctx.root / "bb-raw"

    def raw(i: int) -> measure.RunResult:
        shutil.rmtree(raw_dir, ignore_errors=True)
        checkpoint()
        return measure.run(peers.basebackup_raw(raw_dir), env=env, timeout=timeout)

    rows.append(
        repeat_row(
            SUITE, "pg_basebackup -Ft (raw, to dir)", raw, reps, artifact=lambda: tree_size(raw_dir)
        )
    )
    shutil.rmtree(raw_dir, ignore_errors=True)

    pipe_out = ctx.tmpdir("bb-pipe") / "base.tar.zst.age"

    def pipe(i: int) -> measure.RunResult:
        checkpoint()
        return measure.run(
            peers.basebackup_zstd_age(recipient), env=env, stdout_path=pipe_out, timeout=timeout
        )

    rows.append(
        repeat_row(
            SUITE,
            "pg_basebackup -X none | zstd -3 -T0 | age",
            pipe,
            reps,
            artifact=lambda: pipe_out.stat().st_size,
            baseline=True,
        )
    )
    pipe_out.unlink(missing_ok=True)

    # pgBackRest: a fresh repo per run so each is a real full backup
    work = ctx.tmpdir("bb-pgbackrest", for_postgres=True)

    def pgbr(i: int) -> measure.RunResult:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        chown_postgres(work)
        conf = pgbackrest_local(work, cluster)
        stanza_create(conf)
        checkpoint()
        return measure.run(
            [peers.pgbackrest(conf, "backup", "--type=full")],
            user="postgres",
            cwd=Path("/tmp"),
            timeout=timeout,
        )

    row = repeat_row(
        SUITE,
        "pgbackrest backup --type=full (zst, process-max 2)",
        pgbr,
        reps,
        artifact=lambda: tree_size(work / "repo" / "backup"),
    )
    rows.append(row)
    shutil.rmtree(work, ignore_errors=True)

    # seawall's basebackup waits until the WAL it needs is in *its* archive
    # (that is what makes it restorable), so archive_command must be seawall
    # wal-push into the same volume, as in a real deployment. Both run as
    # postgres so they can share the volume.
    sw_dir = ctx.tmpdir("bb-seawall", for_postgres=True)
    sw_env = ctx.seawall_env(sw_dir)

    def sw(i: int) -> measure.RunResult:
        for child in sw_dir.iterdir():
            subprocess.run(["rm", "-rf", str(child)], check=True)
        checkpoint()
        return measure.run(
            [[*ctx.seawall_cmd(), "postgres", "basebackup"]],
            env=sw_env,
            timeout=timeout,
            user="postgres",
            cwd=Path("/tmp"),
        )

    def sw_artifact() -> int | None:
        best = largest_file(sw_dir)
        return best.stat().st_size if best else None

    ts_dir = ctx.tmpdir("bb-tablespace", for_postgres=True)

    def drop_tablespace() -> None:
        cluster.execute("DROP TABLESPACE IF EXISTS bench_ts")

    def sw_ts(i: int) -> measure.RunResult:
        drop_tablespace()
        cluster.execute(f"CREATE TABLESPACE bench_ts LOCATION '{ts_dir}'")
        try:
            return sw(i)
        finally:
            drop_tablespace()

    unavailable = ctx.seawall_unavailable("postgres", "basebackup")
    if not unavailable:
        cluster.set_archive_command(ctx.seawall_archive_command(sw_dir))
        ctx.defer(lambda: cluster.set_archive_command("/bin/true"))
        ctx.defer(drop_tablespace)
    rows += interleaved_rows(
        SUITE,
        [
            Tool(
                "seawall postgres basebackup (zstd+age, archive_command = seawall)",
                sw,
                rss="root",
                artifact=sw_artifact,
                unavailable=unavailable,
            ),
            Tool(
                "seawall postgres basebackup, + an empty tablespace (BASE_BACKUP protocol)",
                sw_ts,
                rss="root",
                artifact=sw_artifact,
                unavailable=unavailable,
            ),
        ],
        reps,
    )
    if not unavailable:
        cluster.set_archive_command("/bin/true")
    apply_baseline(rows)
    return rows
