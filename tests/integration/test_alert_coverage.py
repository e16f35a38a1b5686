"""Every kind of backup pages when its last run failed, from what the exporter really serves.

Why: issue 16 rewrote alerts/ around the operators' per-engine metrics
(`postgres_backup_status{type}`, `qdrant_backup_status{collection}`), and the
one generic rule that used to cover every series (`SeawallBackupFailed`:
`seawall_backup_last_run_success == 0`) went away. Qdrant full-storage
snapshots belong to a node, not a collection, so they are in no
`qdrant_backup_*` metric and a failing one paged nobody. The promtool tests
in alerts/tests.yml feed hand-written series; this test feeds the samples
of a real scrape of a real catalog (a failed last run in every backup kind
docs/metrics.md names, and a rejected run), so an alert that matches a
label the exporter does not serve, or a kind no alert reads, fails here.
"""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from seawall.exporter.collector import SeawallCollector, make_registry
from tests.integration.exporter.builders import T0, write_backup, write_rejected

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "seawall.rules.yml"
PROMTOOL = "/usr/bin/promtool"

#: (engine, kind) -> the alert that pages for a failed last run, and the
#: labels it carries for the series named in SERIES
FAILED: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("postgresql", "logical"): ("PostgreSQLBackupFailed", {"database": "app", "type": "full"}),
    ("postgresql", "base"): ("PostgreSQLBaseBackupFailed", {"database": "main", "type": "base"}),
    ("qdrant", "snapshot"): ("QdrantBackupFailed", {"collection": "docs"}),
    ("qdrant", "shard-snapshot"): ("QdrantBackupFailed", {"collection": "images"}),
    ("qdrant", "full-storage"): (
        "QdrantFullStorageBackupFailed",
        {"engine": "qdrant", "kind": "full-storage", "series": "qdrant-0:6333"},
    ),
}
SERIES = {
    "logical": "app",
    "base": "main",
    "snapshot": "docs",
    "shard-snapshot": "images",
    "full-storage": "qdrant-0:6333",
}


def documented_kinds() -> set[str]:
    """The backup kinds docs/metrics.md lists for the `kind` label."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    m = re.search(r"`kind` is the backup\s+kind \(([^)]*)\)", text)
    assert m, "docs/metrics.md: the sentence listing the kinds moved"
    return set(re.findall(r"`([a-z-]+)`", m.group(1)))


def scrape(root: Path) -> list[tuple[str, dict[str, str], float]]:
    now = (T0 + timedelta(minutes=5)).timestamp()
    registry = make_registry(SeawallCollector(root, clock=lambda: now))
    return [(s.name, dict(s.labels), s.value) for fam in registry.collect() for s in fam.samples]


def series_line(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def rules_without_annotations(path: Path) -> None:
    """The rules as shipped, minus annotations (tests.yml checks those; here: labels only)."""
    data: dict[str, Any] = yaml.safe_load(RULES.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_documented_kinds_all_have_a_failure_alert() -> None:
    assert {kind for _, kind in FAILED} == documented_kinds()
    assert set(SERIES) == documented_kinds()


def test_a_failed_run_of_every_kind_and_a_rejected_run_page(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    for engine, kind in FAILED:
        series = SERIES[kind]
        write_backup(root, engine, kind, series, finished=T0 - timedelta(days=1))
        write_backup(root, engine, kind, series, finished=T0, status="failed")
    # a healthy series of each engine: nothing pages for it
    write_backup(root, "postgresql", "logical", "billing", finished=T0)
    write_backup(root, "qdrant", "full-storage", "qdrant-1:6333", finished=T0)
    write_rejected(root, "postgresql", "logical", "nosuch", finished=T0)

    samples = scrape(root)
    served = {name for name, _, _ in samples}
    assert {"seawall_rejected_runs", "qdrant_backup_status", "postgres_backup_status"} <= served
    expected: dict[str, list[dict[str, Any]]] = {}
    for alert, labels in FAILED.values():
        expected.setdefault(alert, []).append({"exp_labels": {"severity": "critical", **labels}})
    expected["SeawallRejectedRuns"] = [{"exp_labels": {"severity": "warning"}}]
    # constant over 30 minutes; evaluated once every `for:` (5m) has passed
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series_line(name, labels), "values": f"{value!r}x30"}
                    for name, labels, value in samples
                ],
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": alert, "exp_alerts": exp}
                    for alert, exp in sorted(expected.items())
                ],
            }
        ],
    }
    rules_without_annotations(tmp_path / "rules.yml")
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
