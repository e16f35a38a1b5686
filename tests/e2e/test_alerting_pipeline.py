"""End to end with real parts: PostgreSQL -> seawall -> exporter -> Prometheus ->
Alertmanager -> a webhook.

A real PostgreSQL cluster archives its WAL through ``seawall postgres
wal-push``; ``seawall postgres basebackup`` and ``seawall postgres backup``
run for real, and one backup fails for real (its database stops accepting
connections). A real ``seawall exporter`` serves the catalog, a real
Prometheus scrapes it and evaluates the chart's PrometheusRule, a real
Alertmanager routes to a webhook receiver (an http.server on 127.0.0.1).

Then:
- every dashboard query and every rule expression runs and returns a vector
  whose labels are the ones the panel's legend or the alert's templates use,
  non-empty whenever the metrics it reads are served;
- the failed backup's PostgreSQLBackupFailed, and PostgreSQLBackupOld once
  the newest backup of ``aidb`` is older than its threshold, go pending,
  then firing, and reach the webhook;
- the dashboard's main panels are drawn from this Prometheus into a PNG.

Test-only rule rendering: the rules are rendered by the Helm chart with
short thresholds (``for:`` 3 s, maximum backup age 20 s instead of 2 days)
and Prometheus evaluates every second, so a minute of wall-clock time shows
what takes days in production. Everything else is the shipped rule text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from seawall.exporter.metrics_def import METRICS
from seawall.ports import free_loopback_port
from tests.conftest import ROOT, SEAWALL
from tests.e2e.test_exporter_prometheus import PROMETHEUS, stop, wait_http
from tests.support.pgcluster import PgCluster

helm = pytest.importorskip("helm_python")
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
DASHBOARD = ROOT / "dashboards" / "seawall.json"
METRIC = re.compile(r"\b((?:seawall|postgres_backup|qdrant_backup)_[a-z_]+)")
MAX_AGE = 20  # seconds: postgresBackupMaxAgeSeconds in the test rendering
FOR = "5s"
pytestmark = [
    pytest.mark.skipif(not Path(ALERTMANAGER).exists(), reason="prometheus-alertmanager missing"),
    pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning"),
]


# --- the webhook receiver ----------------------------------------------------------


class Receiver:
    """Alertmanager's webhook target: records every notification it is sent."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_loopback_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self, name: str, status: str = "firing") -> list[dict[str, Any]]:
        return [
            a
            for n in list(self.notifications)
            for a in n["alerts"]
            if a["labels"]["alertname"] == name and a["status"] == status
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- processes -----------------------------------------------------------------------


def start(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kw)


def rendered_rules(tmp_path: Path) -> Path:
    """The chart's PrometheusRule with short thresholds, as a rules file."""
    values = {
        "qdrant": {"enabled": False},
        "postgres": {"basebackup": {"enabled": True}},
        "prometheusRule": {
            "enabled": True,
            "exporterJob": "seawall",
            "thresholds": {
                "backupFailedFor": FOR,
                "backupOldFor": FOR,
                "postgresBackupMaxAgeSeconds": MAX_AGE,
            },
        },
    }
    with helm.Chart.load(ROOT / "charts" / "seawall") as chart:
        rendered = chart.render(values, name="e2e", namespace="backup")
    (rule,) = [
        d
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d and d["kind"] == "PrometheusRule"
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


@pytest.fixture
def stack(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    from tests.integration.wal.helpers import make_archived

    t_start = time.time()
    # --- real backups: WAL archive, a base backup, two databases, one failure
    arch = make_archived(pg_factory, backup_dir, age_keys)
    arch.basebackup()
    pg = arch.pg
    for db in ("billing", "aidb"):
        pg.psql(f"CREATE DATABASE {db}")
        pg.psql(
            "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g",
            db,
        )
    arch.switch_and_wait()  # WAL after the base backup: a PITR window
    env = arch.env(PRUNE_AFTER_BACKUP="false")
    ok = subprocess.run(
        [SEAWALL, "postgres", "backup", "-d", "billing"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    pg.psql("ALTER DATABASE billing ALLOW_CONNECTIONS false")
    failed = subprocess.run(
        [SEAWALL, "postgres", "backup", "-d", "billing"], env=env, capture_output=True, text=True
    )
    assert failed.returncode != 0, "the billing backup was meant to fail"
    newest = subprocess.run(
        [SEAWALL, "postgres", "backup", "-d", "aidb"], env=env, capture_output=True, text=True
    )
    assert newest.returncode == 0, newest.stderr
    aidb_done = time.time()

    # --- exporter, Alertmanager + webhook, Prometheus
    receiver = Receiver()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        exp_port, am_port, prom_port = (free_loopback_port() for _ in range(3))
        exporter = start(
            [SEAWALL, "exporter", "--listen", f"127.0.0.1:{exp_port}", "--rescan-interval", "5"],
            tmp_path / "exporter.log",
            env={**os.environ, "BACKUP_DIR": str(backup_dir), "LOG_FORMAT": "text"},
        )
        procs.append(exporter)
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "webhook",
                        "group_by": ["alertname", "database"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "webhook",
                            "webhook_configs": [{"url": receiver.url, "send_resolved": True}],
                        }
                    ],
                }
            )
        )
        (tmp_path / "am").mkdir()
        am = start(
            [
                ALERTMANAGER,
                f"--config.file={am_config}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # no gossip port on 0.0.0.0
            ],
            tmp_path / "alertmanager.log",
        )
        procs.append(am)
        prom_config = tmp_path / "prometheus.yml"
        prom_config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rendered_rules(tmp_path))],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "seawall",
                            "static_configs": [{"targets": [f"127.0.0.1:{exp_port}"]}],
                        }
                    ],
                }
            )
        )
        (tmp_path / "tsdb").mkdir()
        prom = start(
            [
                PROMETHEUS,
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp_path / "prometheus.log",
        )
        procs.append(prom)
        wait_http(f"http://127.0.0.1:{exp_port}/healthz", exporter)
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", am)
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prom)
        yield {
            "api": f"http://127.0.0.1:{prom_port}/api/v1",
            "receiver": receiver,
            "aidb_done": aidb_done,
            "t_start": t_start,
            "tmp": tmp_path,
            "procs": procs,
        }
    finally:
        for p in reversed(procs):
            stop(p)
        receiver.close()


def query(api: str, expr: str) -> dict[str, Any]:
    answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=30).json()
    assert answer["status"] == "success", (expr, answer)
    data: dict[str, Any] = answer["data"]
    return data


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def alert_states(api: str, name: str, **labels: str) -> set[str]:
    alerts = httpx.get(f"{api}/alerts", timeout=10).json()["data"]["alerts"]
    return {
        a["state"]
        for a in alerts
        if a["labels"]["alertname"] == name and labels.items() <= a["labels"].items()
    }


def legend_labels(fmt: str) -> set[str]:
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", fmt))


def test_backups_to_webhook(stack: dict[str, Any]) -> None:
    api = stack["api"]
    seen: dict[str, set[str]] = {"failed": set(), "old": set()}
    done = threading.Event()

    def watch() -> None:
        """Poll the alert states from the start: a pending state lasts only `for:`."""
        while not done.is_set():
            try:
                seen["failed"] |= alert_states(api, "PostgreSQLBackupFailed", database="billing")
                seen["old"] |= alert_states(api, "PostgreSQLBackupOld", database="aidb")
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        check_everything(stack, seen)
    finally:
        done.set()
        watcher.join(5)


def check_everything(stack: dict[str, Any], seen: dict[str, set[str]]) -> None:
    api = stack["api"]
    receiver: Receiver = stack["receiver"]

    # 1. the scrape has it all: every served family is in Prometheus
    wait_for(
        "the first scrape with the WAL archive",
        lambda: bool(query(api, "seawall_pitr_window_seconds")["result"]),
        30,
    )
    time.sleep(3)  # a few samples for range functions ($__rate_interval)
    served = {
        r["metric"]["__name__"]
        for r in query(api, 'count by (__name__) ({job="seawall"})')["result"]
    }
    assert {
        "postgres_backup_status",
        "seawall_wal_segments",
        "seawall_pitr_window_seconds",
    } <= served
    full = query(api, 'postgres_backup_status{type="full"}')["result"]
    assert {r["metric"]["database"]: r["value"][1] for r in full} == {"billing": "0", "aidb": "1"}
    assert {
        r["metric"]["type"] for r in query(api, "postgres_backup_last_success_timestamp")["result"]
    } == {
        "full",
        "base",
        "wal",
    }

    # 2. every dashboard query: a vector, the legend's labels present, data if served
    dashboard = json.loads(DASHBOARD.read_text())
    checked = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$engine", ".*")
                .replace("$series", ".*")
                .replace("$__rate_interval", "4s")
            )
            data = query(api, expr)
            assert data["resultType"] == "vector", (panel["title"], data)
            reads = set(METRIC.findall(expr)) & set(METRICS)
            if (reads and reads <= served) or "up{" in expr:
                assert data["result"], f"{panel['title']}: {expr} returned nothing"
            for r in data["result"]:
                assert legend_labels(target.get("legendFormat", "")) <= r["metric"].keys(), (
                    panel["title"],
                    r["metric"],
                )
            checked += 1
    assert checked >= 30

    # 3. every rule expression: a vector; templates' labels present
    rules_file = stack["tmp"] / "rules.yml"
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    expected_now = {
        "PostgreSQLBackupFailed": [{"database": "billing", "type": "full"}],
        "PostgreSQLBaseBackupMissing": [],
        "PostgreSQLWalArchiveMissing": [],
        "PostgreSQLWalGap": [],
        "SeawallExporterDown": [],
        "SeawallExporterAbsent": [],
        "SeawallRepositoryUnreadable": [],
        "SeawallCatalogErrors": [],
        "PostgreSQLPitrWindowShort": [{"cluster": "main"}],
    }
    for group in groups:
        for rule in group["rules"]:
            data = query(api, rule["expr"])
            assert data["resultType"] == "vector", rule["alert"]
            used = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
            with_ = set(re.findall(r"with \$labels\.(\w+)", json.dumps(rule["annotations"])))
            for r in data["result"]:
                assert used - with_ <= r["metric"].keys(), (rule["alert"], r["metric"])
            if rule["alert"] in expected_now:
                got = [
                    {
                        k: v
                        for k, v in r["metric"].items()
                        if k not in ("__name__", "instance", "job")
                    }
                    for r in data["result"]
                ]
                assert got == expected_now[rule["alert"]], (rule["alert"], got)

    def aidb_old() -> list[dict[str, Any]]:
        alerts = receiver.alerts("PostgreSQLBackupOld")
        return [a for a in alerts if a["labels"]["database"] == "aidb"]

    # 4. the failed backup: pending, then firing, then at the webhook
    wait_for(
        "PostgreSQLBackupFailed{billing} to fire",
        lambda: "firing" in seen["failed"],
        30,
    )
    # 5. the newest backup of aidb goes stale: pending, then firing, then at the webhook
    wait_for(
        "PostgreSQLBackupOld{aidb} to fire",
        lambda: "firing" in seen["old"],
        MAX_AGE + 40,
    )
    wait_for(
        "both alerts at the webhook",
        lambda: bool(receiver.alerts("PostgreSQLBackupFailed") and aidb_old()),
        30,
    )
    assert "pending" in seen["failed"], "PostgreSQLBackupFailed was never seen pending"
    assert "pending" in seen["old"], "PostgreSQLBackupOld was never seen pending"
    failed = receiver.alerts("PostgreSQLBackupFailed")[0]
    assert failed["labels"]["database"] == "billing" and failed["labels"]["severity"] == "critical"
    assert failed["annotations"]["runbook_url"].endswith("/docs/runbooks/PostgreSQLBackupFailed.md")
    assert "billing" in failed["annotations"]["description"]
    old = aidb_old()
    assert old and old[0]["labels"]["severity"] == "warning"

    # 6. the picture: the dashboard's main panels from this Prometheus
    pytest.importorskip("matplotlib")
    from tests.support.dashboard_png import render

    png = stack["tmp"] / "dashboard.png"
    drawn = render(api, DASHBOARD, stack["t_start"], time.time(), png)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {
        "Last successful backup (age)",
        "Backup success rate",
        "WAL archive age and gaps",
    } <= set(drawn), drawn
    print(f"dashboard picture: {png}")
    if os.environ.get("SEAWALL_UPDATE_DASHBOARD_PNG") == "1":
        (ROOT / "docs" / "dashboard.png").write_bytes(png.read_bytes())
