"""WAL archiving (issue 4): per-segment push latency and sustained archive lag.

archive_command runs once per 16 MiB segment; if it is slower than the
server writes WAL, pg_wal grows until the disk is full and the database
stops. So we time one push per real segment (median over ~20 different
segments, each pushed once into a fresh archive: a re-push of the same file
takes a different, shorter path in every tool) and then let archive_command
chase pgbench at full speed and watch the ``.ready`` backlog.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import measure, peers
from bench.cluster import Cluster, chown_postgres, pg_bin
from bench.context import Context
from bench.datagen import DB_NAME
from bench.report import Row, apply_baseline
from bench.suites.common import rss_notes, tree_size

SUITE = "wal"
SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
PGBENCH_DB = "pgbench"


def _wait_archived(cluster: Cluster, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while cluster.ready_count() and time.monotonic() < deadline:
        time.sleep(0.2)


def ensure_pgbench(ctx: Context, scale: int = 10) -> None:
    cluster = ctx.cluster()
    exists = cluster.scalar(f"SELECT count(*) FROM pg_database WHERE datname = '{PGBENCH_DB}'")
    if exists:
        return
    cluster.execute(f"CREATE DATABASE {PGBENCH_DB}")
    subprocess.run(
        [pg_bin("pgbench"), "-i", "-q", "-s", str(scale), PGBENCH_DB],
        env=ctx.seawall_env(ctx.root) | cluster.libpq_env(),
        check=True,
        capture_output=True,
        timeout=600,
    )


def collect_segments(ctx: Context, count: int) -> list[Path]:
    """Archive real WAL written by pgbench with ``cp`` and keep ``count`` full segments."""
    cluster = ctx.cluster()
    collect = ctx.tmpdir("wal-collect", for_postgres=True)
    env = ctx.seawall_env(ctx.root) | cluster.libpq_env()
    cluster.execute("SELECT pg_switch_wal()")
    _wait_archived(cluster)
    cluster.set_archive_command(f"test ! -f {collect}/%f && cp %p {collect}/%f")
    try:
        ensure_pgbench(ctx)
        # OLTP traffic first (small updates + full-page images), then bulk
        # copies of the realistic application rows, which fill segments fast
        subprocess.run(
            [pg_bin("pgbench"), "-n", "-c", "2", "-j", "2", "-T", "5", PGBENCH_DB],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.execute("DROP TABLE IF EXISTS bench_wal_fill", DB_NAME)
        cluster.execute("CREATE TABLE bench_wal_fill (LIKE events)", DB_NAME)
        deadline = time.monotonic() + 300
        offset = 0
        while time.monotonic() < deadline:
            n = sum(1 for p in collect.iterdir() if SEGMENT_RE.match(p.name))
            if n >= count + 2:
                break
            cluster.execute(
                "INSERT INTO bench_wal_fill SELECT * FROM events ORDER BY id "
                f"OFFSET {offset} LIMIT 20000",
                DB_NAME,
            )
            offset += 20000
            if offset >= int(str(cluster.scalar("SELECT count(*) FROM events", DB_NAME))):
                offset = 0
                cluster.execute("TRUNCATE bench_wal_fill", DB_NAME)
            time.sleep(0.05)
        cluster.execute("SELECT pg_switch_wal()")
        _wait_archived(cluster)
        cluster.execute("DROP TABLE IF EXISTS bench_wal_fill", DB_NAME)
    finally:
        cluster.set_archive_command("/bin/true")
    segsize = cluster.wal_segment_size()
    names = sorted(p.name for p in collect.iterdir() if SEGMENT_RE.match(p.name))
    # skip the first (may hold the tail of earlier, idle WAL); keep full ones
    chosen = [n for n in names[1:] if (collect / n).stat().st_size == segsize][-count:]
    segdir = ctx.tmpdir("wal-segments")
    segdir.chmod(0o755)
    out = []
    for name in chosen:
        dst = segdir / name
        shutil.copyfile(collect / name, dst)
        dst.chmod(0o644)
        out.append(dst)
    shutil.rmtree(collect, ignore_errors=True)
    return out


def per_segment_row(
    tool: str,
    segments: list[Path],
    push: Callable[[Path], measure.RunResult],
    *,
    artifact_dir: Path | None = None,
    rss: str = "max",
    unavailable: str | None = None,
    baseline: bool = False,
) -> Row:
    """One push per segment; the row's median is over segments."""
    row = Row(suite=SUITE, tool=tool, baseline=baseline)
    if unavailable:
        row.notes = unavailable
        return row
    walls: list[float] = []
    peaks: list[float] = []
    note = ""
    for seg in segments:
        res = push(seg)
        if not res.ok:
            row.notes = ("not available" if not walls else "failed") + f" ({res.error()})"
            if not walls:
                return row
            break
        walls.append(res.wall_s)
        value, note = rss_notes(res, "root" if rss == "root" else "max")
        peaks.append(value)
    row.samples = walls
    row.median_s = measure.median(walls)
    # median, not max: a ~50 ms process is sometimes missed by the /proc
    # sampler and then only wait4's figure (floored at the harness's own RSS)
    # is left for that run
    row.rss_mb = measure.median(peaks)
    if artifact_dir is not None and walls:
        row.artifact_bytes = tree_size(artifact_dir) // len(walls)
    p90 = measure.percentile(walls, 90)
    extra = f"per segment, n={len(walls)}, p90 {p90 * 1000:.0f} ms; artifact = mean per segment"
    row.notes = "; ".join(n for n in (extra, note, row.notes) if n)
    return row


def _pgbackrest_setup(ctx: Context, name: str, cipher: bool) -> Path:
    cluster = ctx.cluster()
    work = ctx.tmpdir(name, for_postgres=True)
    repo = work / "repo"
    for d in (repo, work / "lock", work / "spool"):
        d.mkdir()
        chown_postgres(d)
    conf = peers.pgbackrest_conf(
        work / "pgbackrest.conf",
        repo=repo,
        work=work,
        datadir=cluster.datadir,
        port=cluster.port,
        socket_dir=cluster.socket_dir,
        cipher_pass="bench-only-not-a-secret" if cipher else None,
    )
    chown_postgres(conf)
    subprocess.run(
        peers.pgbackrest(conf, "stanza-create"),
        user="postgres",
        check=True,
        capture_output=True,
        timeout=120,
        cwd="/tmp",
    )
    return conf


def sustained(ctx: Context, tool: str, archive_command: str, seconds: float) -> Row:
    """archive_command = tool while pgbench runs flat out; sample the backlog."""
    cluster = ctx.cluster()
    row = Row(suite=SUITE, tool=tool)
    env = ctx.seawall_env(ctx.root) | cluster.libpq_env()
    # without waiting for its own fsyncs pgbench writes WAL as fast as this
    # machine can: the hardest case for archive_command
    env["PGOPTIONS"] = "-c synchronous_commit=off"
    cluster.execute("CHECKPOINT")
    cluster.execute("SELECT pg_switch_wal()")
    _wait_archived(cluster)

    def stats() -> tuple[int, int, int]:
        r = cluster.execute(
            "SELECT archived_count, failed_count, pg_current_wal_lsn() - '0/0'::pg_lsn "
            "FROM pg_stat_archiver"
        )[0]
        return int(r[0]), int(r[1]), int(r[2])  # type: ignore[call-overload]

    a0, f0, lsn0 = stats()
    cluster.set_archive_command(archive_command)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sampler() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - t0, cluster.ready_count()))
            stop.wait(0.5)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        bench = subprocess.run(
            [pg_bin("pgbench"), "-n", "-c", "2", "-j", "2", "-T", str(int(seconds)), PGBENCH_DB],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        _, _, lsn1 = stats()
        ready_at_end = cluster.ready_count()
        t_end = time.monotonic()
        deadline = t_end + 120
        while cluster.ready_count() and time.monotonic() < deadline:
            time.sleep(0.2)
        drain = time.monotonic() - t_end
        remaining = cluster.ready_count()
    finally:
        stop.set()
        thread.join(5)
        cluster.set_archive_command("/bin/true")
    a1, f1, _ = stats()
    _wait_archived(cluster)
    tps = re.search(r"tps = ([0-9.]+)", bench.stdout)
    wal_mb = (lsn1 - lsn0) / 2**20
    max_ready = max((n for _, n in samples), default=0)
    row.extra = {
        "pgbench_seconds": seconds,
        "pgbench_tps": float(tps.group(1)) if tps else None,
        "wal_mb": round(wal_mb, 1),
        "wal_mb_per_s": round(wal_mb / seconds, 1),
        "archived": a1 - a0,
        "archive_failures": f1 - f0,
        "max_ready": max_ready,
        "ready_at_end": ready_at_end,
        "drain_s": round(drain, 1),
        "not_drained": remaining,
        "ready_timeline": samples[:: max(1, len(samples) // 60)],
    }
    row.notes = (
        f"pgbench {seconds:.0f}s: WAL {wal_mb:.0f} MiB ({wal_mb / seconds:.1f} MiB/s), "
        f"archived {a1 - a0}, failures {f1 - f0}, backlog max {max_ready} .ready "
        f"(at end {ready_at_end}), drained in {drain:.1f}s"
        + (f", {remaining} NOT drained" if remaining else "")
    )
    if bench.returncode != 0:
        row.notes += f"; pgbench exit {bench.returncode}"
    return row


def run(ctx: Context) -> list[Row]:
    cluster = ctx.cluster()
    _, recipient = ctx.age_keys()
    ctx.log(f"wal: collecting {ctx.opts.wal_segments} segments")
    segments = collect_segments(ctx, ctx.opts.wal_segments)
    ctx.log(f"wal: {len(segments)} segments of {cluster.wal_segment_size() >> 20} MiB")
    rows: list[Row] = []
    timeout = 120.0

    floor_dir = ctx.tmpdir("wal-floor")
    rows.append(
        per_segment_row(
            "zstd -3 -T0 | age (per segment)",
            segments,
            lambda seg: measure.run(
                peers.segment_zstd_age(seg, recipient),
                stdout_path=floor_dir / (seg.name + ".zst.age"),
                timeout=timeout,
            ),
            artifact_dir=floor_dir,
        )
    )

    conf_paths: dict[str, Path] = {}
    for label, cipher in (
        ("pgbackrest archive-push (zst)", False),
        ("pgbackrest archive-push (zst + aes-256-cbc)", True),
    ):
        try:
            conf = _pgbackrest_setup(ctx, "pgbr-wal-" + ("enc" if cipher else "plain"), cipher)
        except subprocess.CalledProcessError as exc:
            rows.append(
                Row(
                    suite=SUITE,
                    tool=label,
                    notes=f"not available (stanza-create: {exc.stderr!r:.160})",
                )
            )
            continue
        conf_paths[label] = conf
        rows.append(
            per_segment_row(
                label,
                segments,
                lambda seg, conf=conf: measure.run(  # type: ignore[misc]
                    [peers.pgbackrest(conf, "archive-push", str(seg))],
                    user="postgres",
                    cwd=Path("/tmp"),
                    timeout=timeout,
                ),
                artifact_dir=conf.parent / "repo" / "archive",
                baseline=not cipher,
            )
        )

    sw_dir = ctx.tmpdir("wal-seawall")
    sw_env = ctx.seawall_env(sw_dir)
    unavailable = ctx.seawall_unavailable("postgres", "wal-push")
    sw_row = per_segment_row(
        "seawall postgres wal-push (zstd+age)",
        segments,
        lambda seg: measure.run(
            [[*ctx.seawall_cmd(), "postgres", "wal-push", str(seg)]], env=sw_env, timeout=timeout
        ),
        artifact_dir=sw_dir,
        rss="root",
        unavailable=unavailable,
    )
    rows.append(sw_row)
    apply_baseline(rows)
    ctx.wal_layout_sample = sw_dir  # the exporter suite mimics what wal-push wrote

    # --- sustained ------------------------------------------------------------
    seconds = ctx.opts.sustained_s
    if seconds <= 0:
        return rows
    ensure_pgbench(ctx)
    if sw_row.median_s is not None:
        sus_dir = ctx.tmpdir("wal-sustained-seawall", for_postgres=True)
        command = ctx.seawall_archive_command(sus_dir)
        ctx.log(f"wal: sustained archiving with seawall for {seconds:.0f}s")
        rows.append(sustained(ctx, "seawall as archive_command (sustained)", command, seconds))
    else:
        rows.append(
            Row(
                suite=SUITE,
                tool="seawall as archive_command (sustained)",
                notes="skipped: seawall wal-push not available",
            )
        )
    br_conf = conf_paths.get("pgbackrest archive-push (zst)")
    if br_conf is not None:
        ctx.log(f"wal: sustained archiving with pgbackrest for {seconds:.0f}s")
        command = shlex.join(peers.pgbackrest(br_conf, "archive-push")) + " %p"
        rows.append(sustained(ctx, "pgbackrest as archive_command (sustained)", command, seconds))
    return rows
