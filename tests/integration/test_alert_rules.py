"""alerts/seawall.rules.yml: conventions, runbooks, thresholds, and promtool tests
that cover every alert at its `for:` boundary.

Why: an alert is read at 03:00 by someone who did not write it. Each one
must say how bad it is (severity), what is wrong (summary), the values
(a templated description) and where to look (a runbook that exists). And a
promtool test that only checks "fires eventually" would not notice a
`for:` that is one evaluation too short or an alert that never resolves,
so every alert must have the three evaluations that pin that down.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from seawall.exporter.metrics_def import METRICS
from seawall.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RULES = ALERTS / "seawall.rules.yml"
TEST_FILES = ("tests.yml", "tests_long.yml")
PROMTOOL = "/usr/bin/promtool"
RUNBOOK_BASE = "https://github.com/seawall/seawall/blob/main/docs/runbooks/"
CAMEL = re.compile(r"^(?:[A-Z][a-z0-9]*|SQL|WAL|PITR|RTO|RPO)+$")
THRESHOLD = re.compile(r"(\S+)[ \t]+# threshold:(\w+)$", re.M)
DURATION = re.compile(r"^(\d+)([smhdw])$")


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [r for g in data["groups"] for r in g["rules"] if "alert" in r]


def seconds(text: str) -> int:
    m = DURATION.match(text)
    assert m, text
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def test_promtool_check_and_unit_tests_pass() -> None:
    check = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    done = subprocess.run(
        [PROMTOOL, "test", "rules", *TEST_FILES],
        cwd=ALERTS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(TEST_FILES), done.stdout


def test_promtool_tests_can_fail(tmp_path: Path) -> None:
    """The suite above is real: a `for:` one minute shorter breaks it."""
    changed = RULES.read_text().replace(
        "for: 5m  # threshold:backupFailedFor", "for: 4m  # threshold:backupFailedFor"
    )
    assert changed != RULES.read_text()
    (tmp_path / "seawall.rules.yml").write_text(changed)
    (tmp_path / "tests.yml").write_text((ALERTS / "tests.yml").read_text())
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "PostgreSQLBackupFailed, time: 10m" in done.stdout + done.stderr


def test_the_operators_rules_are_verbatim() -> None:
    by_name = {r["alert"]: r for r in rules()}
    failed = by_name["PostgreSQLBackupFailed"]
    assert failed["expr"] == 'postgres_backup_status{type="full"} == 0'
    assert (failed["for"], failed["labels"]["severity"]) == ("5m", "critical")
    old = by_name["PostgreSQLBackupOld"]
    assert 'postgres_backup_last_success_timestamp{type="full"}' in old["expr"]
    assert "> 172800" in old["expr"]  # 2 days
    assert (old["for"], old["labels"]["severity"]) == ("1h", "warning")
    assert by_name["QdrantBackupFailed"]["expr"] == "qdrant_backup_status == 0"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_conventions_and_runbook(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert CAMEL.match(name), f"{name}: CamelCase"
    assert rule["labels"]["severity"] in ("critical", "warning")
    ann = rule["annotations"]
    assert set(ann) == {"summary", "description", "runbook_url"}, name
    assert "{{" in ann["description"] or "{{" in ann["summary"], f"{name}: templated text"
    assert ann["runbook_url"] == f"{RUNBOOK_BASE}{name}.md"
    runbook = ROOT / "docs" / "runbooks" / f"{name}.md"
    assert runbook.exists(), f"write {runbook.relative_to(ROOT)}"
    text = runbook.read_text()
    assert text.startswith(f"# {name}\n"), runbook
    for section in ("## Meaning", "## Confirm", "## Fix"):
        assert section in text, f"{runbook.name}: {section}"
    assert "```sh" in text, f"{runbook.name}: commands"
    used = set(re.findall(r"\b((?:seawall|postgres_backup|qdrant_backup)_[a-z_]+)", rule["expr"]))
    assert used <= set(METRICS), used - set(METRICS)


def _evaluations() -> dict[str, list[tuple[int, int, list[tuple[int, bool]]]]]:
    """alert -> [(file index, group index, [(eval seconds, fires)])]."""
    found: dict[str, list[tuple[int, int, list[tuple[int, bool]]]]] = {}
    for fi, name in enumerate(TEST_FILES):
        data = yaml.safe_load((ALERTS / name).read_text())
        for gi, group in enumerate(data["tests"]):
            per: dict[str, list[tuple[int, bool]]] = {}
            for case in group.get("alert_rule_test", []):
                t = sum(
                    seconds(f"{n}{u}") for n, u in re.findall(r"(\d+)([smhdw])", case["eval_time"])
                )
                per.setdefault(case["alertname"], []).append((t, bool(case["exp_alerts"])))
            for alert, evals in per.items():
                found.setdefault(alert, []).append((fi, gi, sorted(evals)))
    return found


def _interval(file_index: int) -> int:
    data = yaml.safe_load((ALERTS / TEST_FILES[file_index]).read_text())
    return seconds(data["evaluation_interval"])


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_alert_is_tested_at_its_boundary_and_resolves(rule: dict[str, Any]) -> None:
    """Somewhere: silent one evaluation before it fires, firing, then silent again."""
    name = rule["alert"]
    groups = _evaluations().get(name)
    assert groups, f"no promtool test for {name}"
    for fi, _, evals in groups:
        step = _interval(fi)
        times = dict(evals)
        for t, fires in evals:
            before_ok = t == 0 or times.get(t - step) is False
            resolves = any(t2 > t and not f2 for t2, f2 in evals)
            if fires and before_ok and resolves:
                return
    pytest.fail(f"{name}: no test with [] one evaluation before it fires and [] after")


def test_thresholds_are_marked_and_match_the_chart_defaults() -> None:
    marked = THRESHOLD.findall(RULES.read_text())
    assert len(marked) >= 20
    values = yaml.safe_load((ROOT / "charts" / "seawall" / "values.yaml").read_text())
    chart = values["prometheusRule"]["thresholds"]
    defaults: dict[str, str] = {}
    for token, key in marked:
        assert defaults.setdefault(key, token) == token, f"{key}: two defaults"
    assert set(chart) == set(defaults), set(chart) ^ set(defaults)
    # null: derived from retention.pitrWindow (7d by default) by the chart
    assert chart["pitrWindowMinSeconds"] is None and values["retention"]["pitrWindow"] == "7d"
    chart["pitrWindowMinSeconds"] = 7 * 86400
    # null: derived from drill.rtoObjective / drill.rpoObjective by the chart
    for key, objective in (
        ("rtoObjectiveSeconds", "rtoObjective"),
        ("rpoObjectiveSeconds", "rpoObjective"),
    ):
        assert chart[key] is None, f"{key}: null, so that drill.{objective} drives it"
        chart[key] = seconds(values["drill"][objective])
    for key, token in defaults.items():
        assert str(chart[key]) == token, f"values.yaml {key}={chart[key]} vs rules {token}"


def test_drill_alerts_agree_with_the_drill_defaults() -> None:
    """The drill alerts judge by the objectives `seawall drill` itself uses, and
    SeawallDrillOverdue stays quiet between two drills of the chart's schedule.

    Why: they disagreed (RTO 4 h in the rule, 1 h in DRILL_RTO_OBJECTIVE; an
    overdue drill after 35 days against a quarterly CronJob), so a drill could
    report "RTO objective missed" with no alert, and every quarter paged for a
    drill that was not due yet.
    """
    tokens = {key: token for token, key in THRESHOLD.findall(RULES.read_text())}
    fields = Settings.model_fields
    rto = fields["drill_rto_objective"].default.total_seconds()
    rpo = fields["drill_rpo_objective"].default.total_seconds()
    assert (float(tokens["rtoObjectiveSeconds"]), float(tokens["rpoObjectiveSeconds"])) == (
        rto,
        rpo,
    )
    drill = yaml.safe_load((ROOT / "charts" / "seawall" / "values.yaml").read_text())["drill"]
    assert (seconds(drill["rtoObjective"]), seconds(drill["rpoObjective"])) == (rto, rpo)
    # quarterly: at most 92 days (Jul-Sep, Oct-Dec) between two drills, plus a week
    assert drill["schedule"].split()[2:4] == ["1", "*/3"], drill["schedule"]
    assert int(tokens["drillMaxAgeSeconds"]) >= (92 + 7) * 86400
