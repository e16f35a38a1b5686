"""A real Prometheus scrapes `seawall exporter` started from the CLI; the shipped
alert rules pass promtool's checks and unit tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import bcrypt
import httpx
import pytest

from seawall.ports import free_loopback_port
from tests.conftest import ROOT, SEAWALL
from tests.integration.exporter.builders import T0, segment, write_backup, write_wal

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30, **kw: object) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1, **kw)  # type: ignore[arg-type]
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    root = tmp_path / "backups"
    write_backup(root, "postgresql", "logical", "app", finished=T0, size=4096)
    write_backup(
        root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=1), status="failed"
    )
    write_backup(root, "qdrant", "snapshot", "docs", finished=T0, size=2048)
    write_wal(root, "main", segment(1, 1))
    port = free_loopback_port()
    hashed = bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    env = {**os.environ, "BACKUP_DIR": str(root), "LOG_FORMAT": "text"}
    log = open(tmp_path / "exporter.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [SEAWALL, "exporter", "--listen", f"127.0.0.1:{port}", "--web.config.file", str(web)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield port, root, proc
    finally:
        stop(proc)
        log.close()


def test_prometheus_scrapes_the_exporter(
    exporter: tuple[int, Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port, root, proc = exporter
    assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 401
    prom_port = free_loopback_port()
    (tmp_path / "tsdb").mkdir()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {ROOT / 'alerts' / 'seawall.rules.yml'}\n"
        "scrape_configs:\n  - job_name: seawall\n"
        "    basic_auth: {username: prometheus, password: scrape-pw}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    prom = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prom)

        def query(q: str) -> list[dict[str, object]]:
            data = httpx.get(f"{api}/query", params={"query": q}).json()
            assert data["status"] == "success", data
            return data["data"]["result"]  # type: ignore[no-any-return]

        deadline = time.monotonic() + 30
        result: list[dict[str, object]] = []
        while time.monotonic() < deadline and not result:
            result = query("postgres_backup_last_success_timestamp")
            time.sleep(0.5)
        assert result, "Prometheus never got postgres_backup_last_success_timestamp"
        assert result[0]["metric"] == {  # type: ignore[index]
            "__name__": "postgres_backup_last_success_timestamp",
            "database": "app",
            "type": "full",
            "instance": f"127.0.0.1:{port}",
            "job": "seawall",
        }
        assert float(result[0]["value"][1]) == T0.timestamp()  # type: ignore[index]
        assert query('up{job="seawall"}')[0]["value"][1] == "1"  # type: ignore[index]
        assert query("qdrant_backup_size_bytes")[0]["value"][1] == "2048"  # type: ignore[index]
        # the shipped rules are loaded and the failed last run is a pending alert
        # (for: 5m; test_alerting_pipeline.py sees alerts fire with short for:)
        deadline = time.monotonic() + 20
        alerts: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            alerts = httpx.get(f"{api}/alerts").json()["data"]["alerts"]
            if any(a["labels"]["alertname"] == "PostgreSQLBackupFailed" for a in alerts):  # type: ignore[index]
                break
            time.sleep(0.5)
        states = {a["labels"]["alertname"]: a["state"] for a in alerts}  # type: ignore[index]
        assert states.get("PostgreSQLBackupFailed") == "pending", alerts
        # every dashboard query parses and runs on this Prometheus
        import json

        dashboard = json.loads((ROOT / "dashboards" / "seawall.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = (
                    target["expr"]
                    .replace("$engine", ".*")
                    .replace("$series", ".*")
                    .replace("$__rate_interval", "1m")
                )
                query(expr)
        # a new backup shows up at the next scrape
        write_backup(root, "postgresql", "logical", "billing", finished=T0)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if query('postgres_backup_status{database="billing"}'):
                break
            time.sleep(0.5)
        assert query('postgres_backup_status{database="billing"}')
    finally:
        stop(prom)
        log.close()
    assert proc.poll() is None, "the exporter died"


def test_dashboard_uses_only_served_metrics() -> None:
    import json
    import re

    from seawall.exporter.metrics_def import METRICS

    dashboard = json.loads((ROOT / "dashboards" / "seawall.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert exprs
    used = set()
    for expr in exprs:
        used |= set(re.findall(r"\b((?:seawall|postgres_backup|qdrant_backup)_[a-z_]+)", expr))
    unknown = used - set(METRICS)
    assert not unknown, f"dashboard queries metrics the exporter does not serve: {unknown}"
    rules = (ROOT / "alerts" / "seawall.rules.yml").read_text()
    used_rules = set(re.findall(r"\b((?:seawall|postgres_backup|qdrant_backup)_[a-z_]+)", rules))
    assert not used_rules - set(METRICS), used_rules - set(METRICS)
