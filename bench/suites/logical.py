"""Logical backups (issue 2): seawall backup/restore/verify beside pg_dump pipelines.

Backup rows share one baseline (``pg_dump | gzip``); restore rows share
another (``gunzip | psql``). Every tool dumps the same database of the same
cluster in the same run, so cache effects are equal (the first, untimed
warm-up dump pulls the tables into the page cache); the backup tools take
turns, one run each per round, so a drift of the machine's speed does not
favour whichever tool ran during the quiet minutes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from bench import measure, peers
from bench.cluster import pg_bin
from bench.context import Context
from bench.datagen import DB_NAME
from bench.report import Row, apply_baseline
from bench.suites.common import Tool, interleaved_rows, largest_file, repeat_row, tree_size

SUITE = "logical"


def _gzip_ratio(path: Path) -> tuple[int, float] | None:
    """(uncompressed bytes, ratio) from ``gzip -l`` (size is mod 4 GiB)."""
    out = subprocess.run(["gzip", "-l", str(path)], capture_output=True, text=True, check=False)
    fields = out.stdout.splitlines()[-1].split() if out.returncode == 0 else []
    if len(fields) < 2:
        return None
    comp, raw = int(fields[0]), int(fields[1])
    return raw, raw / comp if comp else 0.0


def run(ctx: Context) -> list[Row]:
    cluster = ctx.cluster()
    keyfile, recipient = ctx.age_keys()
    env = ctx.seawall_env(ctx.tmpdir("unused"))  # libpq env for the peers too
    env.update(cluster.libpq_env())
    reps = ctx.opts.repeat
    out = ctx.tmpdir("logical")

    def psql(sql: str) -> None:
        subprocess.run(
            [pg_bin("psql"), "-X", "-q", "-d", "postgres", "-c", sql],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )

    # warm-up: page cache equal for everyone
    measure.run(peers.pg_dump_custom_raw(DB_NAME), env=env, timeout=ctx.opts.timeout_s)

    gz = out / "dump.sql.gz"
    c_out = out / "dump.zst.age"
    # zstd -3 lands within a few % of gzip's size on this data; -5 is what it
    # takes to beat it, so show what that costs
    c5_out = out / "dump5.zst.age"
    sw_dir = ctx.tmpdir("logical-seawall")
    sw_env = ctx.seawall_env(sw_dir)

    def sw_backup(i: int) -> measure.RunResult:
        # a fresh volume per run: same work every time, artifact = one dump
        for child in sw_dir.iterdir():
            subprocess.run(["rm", "-rf", str(child)], check=True)
        return measure.run(
            [[*ctx.seawall_cmd(), "postgres", "backup", "--database", DB_NAME]],
            env=sw_env,
            timeout=ctx.opts.timeout_s,
        )

    def sw_artifact() -> int | None:
        best = largest_file(sw_dir)
        return best.stat().st_size if best else None

    def peer(stages: peers.Stages, path: Path | None) -> Callable[[int], measure.RunResult]:
        return lambda i: measure.run(stages, env=env, stdout_path=path, timeout=ctx.opts.timeout_s)

    # One round = one run of every tool, so drift of the machine's speed
    # lands on all of them alike (see interleaved_rows).
    rows = interleaved_rows(
        SUITE,
        [
            Tool(
                "pg_dump | gzip",
                peer(peers.pg_dump_gzip(DB_NAME), gz),
                artifact=lambda: gz.stat().st_size,
                baseline=True,
            ),
            Tool("pg_dump -Fc -Z0 > /dev/null", peer(peers.pg_dump_custom_raw(DB_NAME), None)),
            Tool(
                "pg_dump -Fc -Z0 | zstd -3 -T0 | age",
                peer(peers.pg_dump_zstd_age(DB_NAME, recipient), c_out),
                artifact=lambda: c_out.stat().st_size,
            ),
            Tool(
                "pg_dump -Fc -Z0 | zstd -5 -T0 | age",
                peer(peers.pg_dump_zstd_age(DB_NAME, recipient, level=5), c5_out),
                artifact=lambda: c5_out.stat().st_size,
            ),
            Tool(
                "seawall postgres backup (zstd+age)",
                sw_backup,
                rss="root",
                artifact=sw_artifact,
                unavailable=ctx.seawall_unavailable("postgres", "backup"),
            ),
        ],
        reps,
    )
    gz_row, _raw_row, c3_row, c5_row, sw_row = rows
    ratio = _gzip_ratio(gz) if gz.exists() else None
    if ratio:
        gz_row.notes = (
            f"plain dump {ratio[0] / 2**20:.0f} MiB, gzip ratio {ratio[1]:.2f}x; " + gz_row.notes
        )
        gz_row.extra["gzip_ratio"] = ratio[1]
        gz_row.extra["plain_dump_bytes"] = ratio[0]
    c5_out.unlink(missing_ok=True)
    if sw_row.median_s is not None:
        sw_row.extra["volume_bytes"] = tree_size(sw_dir)
        # issue 2's second yardstick: the C pipelines, not only the baseline
        versus = []
        for c_row, label in ((c3_row, "zstd -3"), (c5_row, "zstd -5")):
            if c_row.median_s:
                factor = sw_row.median_s / c_row.median_s
                sw_row.extra[f"vs_c_pipeline_{label.replace(' -', '')}"] = factor
                versus.append(f"{factor:.2f}x the C pipeline with {label}")
        if versus:
            sw_row.notes = "; ".join([", ".join(versus), sw_row.notes]).strip("; ")
    apply_baseline(rows)

    # --- restore ------------------------------------------------------------
    restore_rows: list[Row] = []

    def gz_restore(i: int) -> measure.RunResult:
        psql("DROP DATABASE IF EXISTS bench_restore_gz")
        psql("CREATE DATABASE bench_restore_gz")
        return measure.run(
            peers.gunzip_psql("bench_restore_gz"),
            env=env,
            stdin_path=gz,
            timeout=ctx.opts.timeout_s,
        )

    restore_rows.append(
        repeat_row(
            SUITE,
            "restore: gunzip | psql",
            gz_restore,
            reps,
            baseline=True,
            unavailable=None if gz.exists() else "no gzip dump",
        )
    )
    psql("DROP DATABASE IF EXISTS bench_restore_gz")

    sw_restorable = sw_row.median_s is not None
    restore_unavail = ctx.seawall_unavailable("postgres", "restore") or (
        None if sw_restorable else "not available (no seawall backup to restore)"
    )

    def sw_restore(i: int) -> measure.RunResult:
        psql("DROP DATABASE IF EXISTS bench_restore_sw")
        return measure.run(
            [
                [
                    *ctx.seawall_cmd(),
                    "postgres",
                    "restore",
                    "latest",
                    "--target-db",
                    "bench_restore_sw",
                    "--jobs",
                    "2",
                ]
            ],
            env=sw_env,
            timeout=ctx.opts.timeout_s,
        )

    restore_rows.append(
        repeat_row(
            SUITE,
            "restore: seawall --jobs 2",
            sw_restore,
            reps,
            rss="root",
            unavailable=restore_unavail,
        )
    )
    psql("DROP DATABASE IF EXISTS bench_restore_sw")

    verify_unavail = ctx.seawall_unavailable("postgres", "verify") or (
        None if sw_restorable else "not available (no seawall backup to verify)"
    )
    restore_rows.append(
        repeat_row(
            SUITE,
            "seawall postgres verify latest --deep",
            lambda i: measure.run(
                [[*ctx.seawall_cmd(), "postgres", "verify", "latest", "--deep"]],
                env=sw_env,
                timeout=ctx.opts.timeout_s,
            ),
            reps,
            rss="root",
            unavailable=verify_unavail,
        )
    )
    apply_baseline(restore_rows)
    restore_rows[-1].ratio = None  # verify is not a restore; no ratio
    del keyfile
    return rows + restore_rows
