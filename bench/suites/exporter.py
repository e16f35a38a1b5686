"""The exporter (issue 5): scrape cost over 10,000 backups and 100,000 WAL files.

Targets: first scrape < 2 s, p99 of warm scrapes < 50 ms, RSS < 100 MB,
idle CPU near zero. The same volume is then served with the cache off
(``--no-cache``, if the exporter has it) to show what the cache is worth.
Scrapes use http.client on 127.0.0.1, one connection per scrape, like
Prometheus.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.context import REPO, Context
from bench.measure import percentile
from bench.report import Row
from bench.suites.prune import fixture
from seawall.ports import free_loopback_port

SUITE = "exporter"
WARM_SCRAPES = 100
IDLE_SECONDS = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _scrape(port: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/metrics answered {resp.status}: {body[:120]!r}")
    finally:
        conn.close()
    return time.perf_counter() - t0, len(body)


def _cpu_seconds(pid: int) -> float:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    fields = data[data.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_mb(pid: int) -> tuple[float, float]:
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"exporter exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return time.monotonic() - t0
        time.sleep(0.02)
    raise TimeoutError(f"exporter not listening on 127.0.0.1:{port} after {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def measure_exporter(
    ctx: Context, tool: str, root: Path, extra_args: list[str], scrapes: int, idle: float
) -> Row:
    row = Row(suite=SUITE, tool=tool)
    port = free_loopback_port()
    env = ctx.seawall_env(root)
    err = open(ctx.root / f"exporter-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*ctx.seawall_cmd(), "exporter", "--listen", f"127.0.0.1:{port}", *extra_args],
        env=env,
        stdout=err,
        stderr=err,
        cwd=REPO,
        process_group=0,
    )
    ctx.defer(lambda: _stop(proc))
    try:
        startup = _wait_listening(proc, port, 60)
        first, size = _scrape(port)
        warm = [_scrape(port)[0] for _ in range(scrapes)]
        rss, hwm = _rss_mb(proc.pid)
        cpu0 = _cpu_seconds(proc.pid)
        time.sleep(idle)
        idle_cpu = (_cpu_seconds(proc.pid) - cpu0) / idle
        rss_end, hwm = _rss_mb(proc.pid)
    except Exception as exc:
        _stop(proc)
        err.close()
        tail = (ctx.root / f"exporter-{port}.log").read_text(errors="replace").strip()
        last = tail.splitlines()[-1][:140] if tail else ""
        row.notes = f"not available (error: {exc}{'; ' + last if last else ''})"
        return row
    _stop(proc)
    err.close()
    p50, p99 = percentile(warm, 50), percentile(warm, 99)
    row.median_s = p50
    row.samples = warm
    row.rss_mb = hwm
    row.artifact_bytes = size
    row.extra = {
        "startup_s": round(startup, 3),
        "first_scrape_s": round(first, 4),
        "warm_p50_s": round(p50, 4),
        "warm_p99_s": round(p99, 4),
        "rss_mb_after_scrapes": round(rss, 1),
        "rss_mb_end": round(rss_end, 1),
        "idle_cpu_percent": round(idle_cpu * 100, 2),
    }
    row.notes = (
        f"median = warm scrape p50; listening after {startup:.2f}s, first scrape "
        f"{first * 1000:.0f} ms, warm p99 "
        f"{p99 * 1000:.1f} ms (n={len(warm)}), idle CPU {idle_cpu * 100:.2f}% over "
        f"{idle:.0f}s, RSS {rss_end:.0f} MB (peak {hwm:.0f}); artifact = /metrics body"
    )
    return row


def run(ctx: Context) -> list[Row]:
    tool = "seawall exporter"
    try:
        root, info = fixture(ctx)
    except ImportError as exc:
        return [
            Row(suite=SUITE, tool=tool, notes=f"skipped: seawall.catalog not importable ({exc})")
        ]
    unavailable = ctx.seawall_unavailable("exporter")
    if unavailable:
        return [Row(suite=SUITE, tool=tool, notes=unavailable)]
    desc = f"{info['backups']} backups, {info['wal_files']} WAL files ({info['wal_layout']})"
    rows = [measure_exporter(ctx, f"{tool} (cached)", root, [], WARM_SCRAPES, IDLE_SECONDS)]
    rows[0].notes = f"{desc}; {rows[0].notes}"
    help_text = subprocess.run(
        [*ctx.seawall_cmd(), "exporter", "--help"],
        env=ctx.seawall_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    if "--no-cache" in help_text:
        rows.append(
            measure_exporter(ctx, f"{tool} --no-cache (naive)", root, ["--no-cache"], 20, 2.0)
        )
        if rows[0].median_s and rows[1].median_s:
            rows[1].ratio = rows[1].median_s / rows[0].median_s
            rows[0].ratio = 1.0
            rows[0].baseline = True
    else:
        rows.append(
            Row(
                suite=SUITE,
                tool=f"{tool} --no-cache (naive)",
                notes="skipped: exporter has no --no-cache flag",
            )
        )
    from bench.exporter_s3 import rows as s3_rows  # the repository on S3 (ADR 0014)

    return rows + s3_rows(ctx, root)
