"""WAL archiving (issue 4): per-segment push latency and sustained archive lag.

archive_command runs once per 16 MiB segment; if it is slower than the
server writes WAL, pg_wal grows until the disk is full and the database
stops. So we time one push per real segment (median over ~20 different
segments, each pushed once into a fresh archive: a re-push of the same file
takes a different, shorter path in every tool; ``--repeat`` passes, at most
5, each into new archives), with the tools taking turns segment by segment
so that load from others on the machine hits them alike, and then let
archive_command chase pgbench at full speed and watch the ``.ready``
backlog.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import measure, peers
from bench.cluster import Cluster, pg_bin
from bench.context import Context
from bench.datagen import DB_NAME
from bench.report import Row, apply_baseline
from bench.suites.common import pgbackrest_local, rss_notes, stanza_create, tree_size

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


class Lane:
    """One tool of the per-segment comparison, pushed once per segment per pass."""

    def __init__(
        self,
        tool: str,
        setup: Callable[[int], tuple[Callable[[Path], measure.RunResult], Path | None]],
        *,
        rss: str = "max",
        baseline: bool = False,
    ) -> None:
        self.tool = tool
        self.setup = setup  # pass number -> (push one segment, its artifact dir)
        self.rss = rss
        self.baseline = baseline
        self.push: Callable[[Path], measure.RunResult] | None = None
        self.walls: list[float] = []
        self.peaks: list[float] = []
        self.note = ""
        self.error = ""
        self.artifact_dirs: list[Path] = []

    def start_pass(self, n: int) -> None:
        if self.error:
            return
        try:
            self.push, artifacts = self.setup(n)
        except subprocess.CalledProcessError as exc:
            self.error = f"not available (setup: {exc.stderr!r:.160})"
            return
        if artifacts is not None:
            self.artifact_dirs.append(artifacts)

    def run(self, seg: Path) -> None:
        if self.error or self.push is None:
            return
        res = self.push(seg)
        if not res.ok:
            self.error = ("not available" if not self.walls else "failed") + f" ({res.error()})"
            return
        self.walls.append(res.wall_s)
        value, self.note = rss_notes(res, "root" if self.rss == "root" else "max")
        self.peaks.append(value)

    def row(self, loads: list[float]) -> Row:
        row = Row(suite=SUITE, tool=self.tool, baseline=self.baseline)
        if not self.walls:
            row.notes = self.error or "not run"
            return row
        row.samples = self.walls
        row.median_s = measure.median(self.walls)
        # median, not max: a ~50 ms process is sometimes missed by the /proc
        # sampler and then only wait4's figure (floored at the harness's own
        # RSS) is left for that run
        row.rss_mb = measure.median(self.peaks)
        if self.artifact_dirs:
            row.artifact_bytes = sum(tree_size(d) for d in self.artifact_dirs) // len(self.walls)
        p90 = measure.percentile(self.walls, 90)
        extra = (
            f"per segment, n={len(self.walls)}, p90 {p90 * 1000:.0f} ms, interleaved, "
            f"load {min(loads):.1f}-{max(loads):.1f}; artifact = mean per segment"
        )
        row.notes = "; ".join(n for n in (extra, self.note, self.error) if n)
        return row


def compile_bytecode(*extra_src: str | None) -> None:
    """Write seawall's .pyc files, as installing the wheel does.

    ``pip install`` compiles every module; an editable install run with
    PYTHONDONTWRITEBYTECODE=1 (set on the shared dev machines), or by a user
    who cannot write the source tree (archive_command runs as postgres),
    compiles the hot path from source on every push instead: ~5 ms per
    segment that no installed seawall pays.
    """
    import seawall

    dirs = [str(Path(seawall.__file__).parent)]
    dirs += [str(Path(d) / "seawall") for d in extra_src if d]
    subprocess.run(
        [str(Path(sys.executable)), "-m", "compileall", "-q", *dirs],
        check=False,
        capture_output=True,
        timeout=300,
    )


def interleaved_rows(lanes: list[Lane], segments: list[Path], passes: int) -> list[Row]:
    """Push every segment with every tool, alternating tools segment by segment.

    The bench machine is shared: a burst of someone else's load must hit all
    tools alike, so the tools take turns on each segment (the order rotates so
    none always runs right after another), and each pass starts every tool on
    an empty archive (a re-push of the same file takes a different, shorter
    path in every tool). The 1-minute load average is recorded per segment.
    """
    loads: list[float] = []
    k = 0
    for n in range(passes):
        for lane in lanes:
            lane.start_pass(n)
        for seg in segments:
            loads.append(os.getloadavg()[0])
            for j in range(len(lanes)):
                lanes[(k + j) % len(lanes)].run(seg)
            k += 1
    return [lane.row(loads) for lane in lanes]


def archive_push(conf: Path, timeout: float) -> Callable[[Path], measure.RunResult]:
    """A lane's push of one segment with ``pgbackrest archive-push`` (``conf``'s repository),
    run as PostgreSQL's archive_command runs it: as the postgres user, from a directory
    it may enter. One definition for every suite's pgBackRest lane (wal, wals3)."""
    return lambda seg: measure.run(
        [peers.pgbackrest(conf, "archive-push", str(seg))],
        user="postgres",
        cwd=Path("/tmp"),
        timeout=timeout,
    )


def _pgbackrest_setup(ctx: Context, name: str, cipher: bool) -> Path:
    work = ctx.tmpdir(name, for_postgres=True)
    cipher_pass = "bench-only-not-a-secret" if cipher else None
    conf = pgbackrest_local(work, ctx.cluster(), cipher_pass)
    stanza_create(conf)
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

    passes = max(1, min(ctx.opts.repeat, 5))
    compile_bytecode(os.environ.get("BENCH_WAL_COMPARE_SRC"))

    def floor(n: int) -> tuple[Callable[[Path], measure.RunResult], Path]:
        out = ctx.tmpdir(f"wal-floor-{n}")
        return (
            lambda seg: measure.run(
                peers.segment_zstd_age(seg, recipient),
                stdout_path=out / (seg.name + ".zst.age"),
                timeout=timeout,
            ),
            out,
        )

    conf_paths: dict[str, Path] = {}

    def pgbackrest(label: str, cipher: bool) -> Lane:
        def setup(n: int) -> tuple[Callable[[Path], measure.RunResult], Path]:
            conf = _pgbackrest_setup(ctx, f"pgbr-wal-{'enc' if cipher else 'plain'}-{n}", cipher)
            conf_paths.setdefault(label, conf)
            return archive_push(conf, timeout), conf.parent / "repo" / "archive"

        return Lane(label, setup, baseline=not cipher)

    sw_dirs: list[Path] = []

    def seawall(
        env_extra: dict[str, str],
    ) -> Callable[[int], tuple[Callable[[Path], measure.RunResult], Path]]:
        def setup(n: int) -> tuple[Callable[[Path], measure.RunResult], Path]:
            out = ctx.tmpdir(f"wal-seawall-{len(sw_dirs)}")
            sw_dirs.append(out)
            env = ctx.seawall_env(out) | env_extra
            cmd = [*ctx.seawall_cmd(), "postgres", "wal-push"]
            return (lambda seg: measure.run([[*cmd, str(seg)]], env=env, timeout=timeout), out)

        return setup

    lanes = [
        Lane("zstd -3 -T0 | age (per segment)", floor),
        pgbackrest("pgbackrest archive-push (zst)", False),
        pgbackrest("pgbackrest archive-push (zst + aes-256-cbc)", True),
    ]
    unavailable = ctx.seawall_unavailable("postgres", "wal-push")
    sw_lane = Lane("seawall postgres wal-push (zstd+age)", seawall({}), rss="root")
    if unavailable:
        sw_lane.error = unavailable
    lanes.append(sw_lane)
    # BENCH_WAL_COMPARE_SRC=/path/to/other/checkout/src adds a row for that
    # tree's wal-push in the same interleaved run (before/after comparisons)
    other = os.environ.get("BENCH_WAL_COMPARE_SRC")
    if other and not unavailable:
        lanes.append(
            Lane(
                f"seawall wal-push from {other}",
                seawall({"PYTHONPATH": other}),
                rss="root",
            )
        )
    ctx.log(f"wal: {passes} pass(es) x {len(segments)} segments, tools interleaved")
    rows = interleaved_rows(lanes, segments, passes)
    sw_row = next(r for r in rows if r.tool == sw_lane.tool)
    if sw_dirs:
        ctx.wal_layout_sample = sw_dirs[0]  # the exporter suite mimics what wal-push wrote
    apply_baseline(rows)

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
