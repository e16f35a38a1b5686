"""The Helm chart ``charts/seawall``, rendered and linted offline.

Why these tests: a chart is only ever exercised by a cluster at 02:00, so
every promise of the chart is checked here on the rendered manifests with
Helm's own engine (``helm-python-sdk``, the Go Helm library through a C ABI)
and Kubernetes' own API schemas (``kubernetes-validate``, strict: unknown
fields fail). No cluster is needed; the whole module runs in a few seconds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python")
kv_utils = pytest.importorskip("kubernetes_validate.utils")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "seawall"
FULL_VALUES_FILE = CHART / "ci" / "full-values.yaml"
RULES_COPY = CHART / "files" / "seawall.rules.yml"
DASHBOARD_COPY = CHART / "files" / "seawall.json"

#: The oldest Kubernetes the chart supports (CronJob timeZone is GA in 1.27)
#: and the newest whose API schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.27.0", kv_utils.latest_version())
CRD_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})
SENTINEL = "s3ntinel-Pa55w0rd-7f3e91"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
EXPECTED_SCHEDULES = {
    "postgres-backup": "0 2 * * *",
    "qdrant-backup": "0 3 * * *",
    "postgres-verify": "0 4 * * 0",
    "qdrant-verify": "0 4 * * 0",
    "drill": "0 5 1 */3 *",
}

Doc = dict[str, Any]


# --- helpers -------------------------------------------------------------------


def full_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(FULL_VALUES_FILE.read_text())
    return values


def render_raw(chart: Any, values: dict[str, Any] | None = None) -> dict[str, str]:
    rendered: dict[str, str] = chart.render(values, name="rel", namespace="backup")
    return rendered


def render(chart: Any, values: dict[str, Any] | None = None) -> list[Doc]:
    """Every Kubernetes object the chart renders (NOTES.txt excluded)."""
    docs: list[Doc] = []
    for path, text in sorted(render_raw(chart, values).items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def component(doc: Doc) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


def pod_spec(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        spec: Doc = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = doc["spec"]["template"]["spec"]
    return spec


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("CronJob", "Deployment")]


def only_container(doc: Doc) -> Doc:
    containers = pod_spec(doc)["containers"]
    assert len(containers) == 1, doc["metadata"]["name"]
    container: Doc = containers[0]
    return container


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def secret_volumes(doc: Doc) -> dict[str, Doc]:
    """Volume name -> secret source, for the Secret volumes of a pod."""
    return {v["name"]: v["secret"] for v in pod_spec(doc).get("volumes", []) if "secret" in v}


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def default_docs(chart: Any) -> list[Doc]:
    return render(chart)


@pytest.fixture(scope="module")
def full_docs(chart: Any) -> list[Doc]:
    return render(chart, full_values())


# --- chart, lint, schema ----------------------------------------------------------


def test_chart_metadata(chart: Any) -> None:
    meta = chart.metadata
    assert (meta["apiVersion"], meta["name"]) == ("v2", "seawall")
    assert (meta["version"], meta["appVersion"]) == ("0.1.0", "0.1.0")
    assert chart.schema is not None, "values.schema.json must ship with the chart"


@pytest.mark.parametrize("which", ["default", "full"])
def test_lint_passes_strict(which: str) -> None:
    values = full_values() if which == "full" else None
    for version in K8S_VERSIONS:
        report = helm.lint(CHART, values, strict=True, kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert report["errors"] == [] and problems == [], (version, report)


def test_lint_reports_schema_violation() -> None:
    """The lint above can fail: a schedule given as a number is an error."""
    report = helm.lint(CHART, {"schedules": {"verify": 4}})
    assert any("/schedules/verify" in e for e in report["errors"]), report


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"schedules": {"postgresBackup": 2}}, "/schedules/postgresBackup"),
        ({"schedules": {"verify": "every sunday"}}, "/schedules/verify"),
        ({"schedules": {"qdrantBackup": "CRON_TZ=UTC 0 3 * * *"}}, "/schedules/qdrantBackup"),
        ({"postgres": {"port": "5432"}}, "/postgres/port"),
        ({"postgres": {"password": SENTINEL}}, "/postgres"),
        ({"compression": {"algorithm": "lz4"}}, "/compression/algorithm"),
        ({"encryption": {"recipients": ["AGE-SECRET-KEY-1ABC"]}}, "/encryption/recipients/0"),
        ({"retention": {"days": -1}}, "/retention/days"),
        ({"exporter": {"port": 70000}}, "/exporter/port"),
        ({"sheduels": {}}, "sheduels"),
        ({"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext/runAsUser"),
        ({"securityContext": {"runAsNonRoot": False}}, "/securityContext/runAsNonRoot"),
        ({"postgres": {"databases": ["--help"]}}, "/postgres/databases/0"),
    ],
)
def test_schema_rejects_bad_values(chart: Any, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as info:
        render_raw(chart, values)
    message = str(info.value)
    assert where in message
    assert SENTINEL not in message, "a rejected secret must not be echoed"


def test_defaults_and_full_values_satisfy_schema(chart: Any) -> None:
    chart.validate_schema(chart.values)
    chart.validate_schema(full_values())


# --- what is rendered ------------------------------------------------------------


def test_default_objects(default_docs: list[Doc]) -> None:
    kinds = sorted(d["kind"] for d in default_docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "CronJob",
            "CronJob",
            "CronJob",
            "CronJob",
            "CronJob",
            "Deployment",
            "PersistentVolumeClaim",
            "Service",
            "ServiceAccount",
        ]
    )
    assert all(d["metadata"]["namespace"] == "backup" for d in default_docs)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("which", ["default", "full"])
def test_manifests_validate_against_kubernetes_schemas(
    which: str, version: str, default_docs: list[Doc], full_docs: list[Doc]
) -> None:
    docs = full_docs if which == "full" else default_docs
    checked = 0
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue  # no schema in kubernetes-validate; shape tested below
        kv_utils.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 9


def test_kubernetes_validation_can_fail(default_docs: list[Doc]) -> None:
    """The validation above is real: a misspelt field is rejected."""
    cron = json.loads(json.dumps(of_kind(default_docs, "CronJob")[0]))
    cron["spec"]["concurrencyPolcy"] = "Forbid"
    with pytest.raises(kv_utils.ValidationError):
        kv_utils.validate(cron, K8S_VERSIONS[-1], strict=True)


def test_cronjob_schedules_are_exact(default_docs: list[Doc]) -> None:
    crons = of_kind(default_docs, "CronJob")
    assert {component(c): c["spec"]["schedule"] for c in crons} == EXPECTED_SCHEDULES
    assert {c["spec"]["timeZone"] for c in crons} == {"Etc/UTC"}


def test_full_values_schedules_and_time_zone(full_docs: list[Doc]) -> None:
    expected = {
        **EXPECTED_SCHEDULES,
        "postgres-basebackup": "30 1 * * *",
        "drill": "15 6 1 1,4,7,10 *",
    }
    crons = of_kind(full_docs, "CronJob")
    assert {component(c): c["spec"]["schedule"] for c in crons} == expected
    assert {c["spec"]["timeZone"] for c in crons} == {"Europe/Berlin"}


@pytest.mark.parametrize("which", ["default", "full"])
def test_cronjob_run_policies(
    which: str, chart: Any, default_docs: list[Doc], full_docs: list[Doc]
) -> None:
    docs = full_docs if which == "full" else default_docs
    cj = chart.merge_values(full_values() if which == "full" else None)["cronJob"]
    for cron in of_kind(docs, "CronJob"):
        spec = cron["spec"]
        job = spec["jobTemplate"]["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] == cj["startingDeadlineSeconds"]
        assert spec["successfulJobsHistoryLimit"] == cj["successfulJobsHistoryLimit"]
        assert spec["failedJobsHistoryLimit"] == cj["failedJobsHistoryLimit"]
        assert pod_spec(cron)["restartPolicy"] == "Never"
        if component(cron) == "drill":  # no retry, its own deadline (test_drill_cronjob)
            continue
        assert job["backoffLimit"] == cj["backoffLimit"]
        deadline = (
            "verifyActiveDeadlineSeconds"
            if "verify" in component(cron)
            else ("activeDeadlineSeconds")
        )
        assert job["activeDeadlineSeconds"] == cj[deadline]
        assert job.get("ttlSecondsAfterFinished") == cj.get("ttlSecondsAfterFinished")
        assert pod_spec(cron)["restartPolicy"] == "Never"
        assert len(cron["metadata"]["name"]) <= 52, "CronJob names are limited to 52 chars"


def test_default_commands(default_docs: list[Doc]) -> None:
    args = {component(w): only_container(w)["args"] for w in workloads(default_docs)}
    assert args == {
        "postgres-backup": ["postgres", "backup"],
        "qdrant-backup": ["qdrant", "backup"],
        "postgres-verify": ["postgres", "verify", "latest", "--database", "postgres", "--deep"],
        "qdrant-verify": ["qdrant", "verify", "latest"],
        "drill": ["drill", "--report", "/backups/drill-reports"],
        "exporter": ["exporter", "--listen", "0.0.0.0:9877", "--rescan-interval", "300"],
    }
    assert all(only_container(w)["command"] == ["seawall"] for w in workloads(default_docs))


def test_basebackup_cronjob(chart: Any, full_docs: list[Doc]) -> None:
    (base,) = [c for c in of_kind(full_docs, "CronJob") if component(c) == "postgres-basebackup"]
    assert only_container(base)["args"] == ["postgres", "basebackup"]
    assert of_kind(full_docs, "ConfigMap")[0]["data"]["PG_CLUSTER_NAME"] == "prod-main"
    off = render(chart, {"postgres": {"basebackup": {"enabled": True}, "enabled": False}})
    assert "postgres-basebackup" not in {component(c) for c in of_kind(off, "CronJob")}


def test_drill_cronjob(chart: Any, full_docs: list[Doc]) -> None:
    (drill,) = [c for c in of_kind(full_docs, "CronJob") if component(c) == "drill"]
    values = full_values()
    assert drill["spec"]["schedule"] == values["drill"]["schedule"]
    job = drill["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0  # a failed drill is a finding: no retry
    assert job["activeDeadlineSeconds"] == values["drill"]["activeDeadlineSeconds"]
    container = only_container(drill)
    assert container["args"] == ["drill"]  # reportDir "" in the full values: no report files
    env = env_of(container)
    assert env["DRILL_SMOKE_QUERY"]["value"] == values["drill"]["smokeQuery"]
    assert float(env["DRILL_SMOKE_MIN"]["value"]) == values["drill"]["smokeMin"]
    assert env["DRILL_RTO_OBJECTIVE"]["value"] == values["drill"]["rtoObjective"]
    assert env["DRILL_SMOKE_DATABASE"]["value"] == values["drill"]["smokeDatabase"]
    # off: no drill CronJob; the schedule is checked by the schema
    off = render(chart, {"drill": {"enabled": False}})
    assert "drill" not in {component(c) for c in of_kind(off, "CronJob")}
    with pytest.raises(helm.HelmError):
        render_raw(chart, {"drill": {"schedule": "quarterly"}})
    # one engine only: that engine's credentials, the drill still runs
    qd = render(chart, {"postgres": {"enabled": False}})
    (drill_qd,) = [c for c in of_kind(qd, "CronJob") if component(c) == "drill"]
    assert "DB_PASSWORD_FILE" not in env_of(only_container(drill_qd))


def test_one_verify_cronjob_per_database_and_collection(full_docs: list[Doc]) -> None:
    verifies = [c for c in of_kind(full_docs, "CronJob") if "verify" in component(c)]
    names = [c["metadata"]["name"] for c in verifies]
    assert len(set(names)) == len(names) == 5
    assert all(DNS_LABEL.match(n) and len(n) <= 52 for n in names), names
    series = sorted(tuple(only_container(c)["args"][:5]) for c in verifies)
    assert series == sorted(
        [
            ("postgres", "verify", "latest", "--database", db)
            for db in ("app", "billing", "Analytics_Warehouse_With_A_Rather_Long_Name")
        ]
        + [("qdrant", "verify", "latest", "--collection", c) for c in ("documents", "images")]
    )


def test_disabling_engines_and_verify(chart: Any) -> None:
    docs = render(
        chart,
        {"qdrant": {"enabled": False}, "verify": {"enabled": False}, "drill": {"enabled": False}},
    )
    assert [component(c) for c in of_kind(docs, "CronJob")] == ["postgres-backup"]
    docs = render(chart, {"postgres": {"enabled": False}, "exporter": {"enabled": False}})
    assert sorted(component(c) for c in of_kind(docs, "CronJob")) == [
        "drill",
        "qdrant-backup",
        "qdrant-verify",
    ]
    assert not of_kind(docs, "Deployment") and not of_kind(docs, "Service")


# --- volumes ------------------------------------------------------------------------


def _backup_mount(doc: Doc, claim: str, mount_path: str) -> Doc:
    volumes = {v["name"]: v for v in pod_spec(doc)["volumes"]}
    assert volumes["backups"]["persistentVolumeClaim"]["claimName"] == claim
    mounts = {m["name"]: m for m in only_container(doc)["volumeMounts"]}
    assert mounts["backups"]["mountPath"] == mount_path
    mount: Doc = mounts["backups"]
    return {"volume": volumes["backups"]["persistentVolumeClaim"], "mount": mount}


@pytest.mark.parametrize("which", ["default", "full"])
def test_backup_volume_mounts(which: str, default_docs: list[Doc], full_docs: list[Doc]) -> None:
    docs = full_docs if which == "full" else default_docs
    claim = "rel-seawall-backups" if which == "default" else "prod-seawall-backups"
    path = "/backups" if which == "default" else "/var/backups/seawall"
    (pvc,) = of_kind(docs, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    config = of_kind(docs, "ConfigMap")[0]["data"]
    assert config["BACKUP_DIR"] == path
    for cron in of_kind(docs, "CronJob"):
        found = _backup_mount(cron, claim, path)
        assert not found["mount"].get("readOnly") and not found["volume"].get("readOnly")
    (exporter,) = of_kind(docs, "Deployment")
    found = _backup_mount(exporter, claim, path)
    assert found["mount"]["readOnly"] is True, "the exporter must mount the catalog read-only"
    assert found["volume"]["readOnly"] is True


def test_existing_claim_is_used_and_not_created(chart: Any) -> None:
    docs = render(chart, {"backupVolume": {"existingClaim": "team-backups"}})
    assert not of_kind(docs, "PersistentVolumeClaim")
    for doc in workloads(docs):
        _backup_mount(doc, "team-backups", "/backups")


# --- security ---------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default", "full"])
def test_security_context_is_locked_down(
    which: str, default_docs: list[Doc], full_docs: list[Doc]
) -> None:
    docs = full_docs if which == "full" else default_docs
    for doc in workloads(docs):
        pod = pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, (
                "a read-only root needs a writable /tmp"
            )


def _chart_without_schema(tmp_path: Path) -> Path:
    copy = tmp_path / "seawall"
    shutil.copytree(CHART, copy)
    (copy / "values.schema.json").unlink()
    return copy


def test_no_secret_value_in_any_rendered_manifest(tmp_path: Path) -> None:
    """Even values that carry secrets (as older charts allowed) never render.

    The schema already refuses such keys (test_schema_rejects_bad_values);
    this renders a schema-less copy to prove no template reads them either.
    """
    values = full_values()
    values["postgres"].update(password=SENTINEL, passwordSecret={"name": "pg", "key": "pw"})
    values["qdrant"].update(apiKey=SENTINEL)
    values["encryption"].update(identity=SENTINEL, key=SENTINEL, passphrase=SENTINEL)
    values["exporter"].update(basicAuthPassword=SENTINEL)
    with helm.Chart.load(_chart_without_schema(tmp_path)) as loose:
        rendered = render_raw(loose, values)
    assert "NOTES.txt" in " ".join(rendered)
    for path, text in rendered.items():
        assert SENTINEL not in text, f"{path} renders a secret value"


def test_sentinel_check_can_fail(tmp_path: Path) -> None:
    """A template that did read a secret value is caught by the check above."""
    copy = _chart_without_schema(tmp_path)
    (copy / "templates" / "leak.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak}\n"
        "data: {DB_PASSWORD: {{ .Values.postgres.password | quote }}}\n"
    )
    with helm.Chart.load(copy) as leaky:
        rendered = render_raw(leaky, {"postgres": {"password": SENTINEL}})
    assert any(SENTINEL in text for text in rendered.values())


SECRETISH = re.compile(r"PASSWORD|API_KEY|ENCRYPTION_KEY|IDENTITY|SECRET|TOKEN", re.I)


def test_secrets_reach_jobs_as_files_only(full_docs: list[Doc]) -> None:
    """*_FILE variables point into read-only Secret mounts; no secret in env."""
    secrets = {
        "DB_PASSWORD_FILE": ("pg-backup-credentials", "pg-password"),
        "QDRANT_API_KEY_FILE": ("qdrant-credentials", "api-key"),
        "ENCRYPTION_IDENTITY_FILES": ("seawall-age-identity", "identity.txt"),
    }
    for cron in of_kind(full_docs, "CronJob"):
        container = only_container(cron)
        env = env_of(container)
        volumes = secret_volumes(cron)
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        for name, entry in env.items():
            assert "valueFrom" not in entry or "secretKeyRef" not in entry["valueFrom"], name
            if SECRETISH.search(name):
                assert name.endswith(("_FILE", "_FILES")), f"{name} carries a secret in env"
        # Least privilege: a job holds its own engine's credential only
        # (the drill restores both engines).
        engine_var = (
            "DB_PASSWORD_FILE"
            if component(cron).startswith("postgres")
            else ("QDRANT_API_KEY_FILE")
        )
        drill = component(cron) == "drill"
        wanted = ({"DB_PASSWORD_FILE", "QDRANT_API_KEY_FILE"} if drill else {engine_var}) | (
            {"ENCRYPTION_IDENTITY_FILES"} if "verify" in component(cron) or drill else set()
        )
        assert {n for n in env if n.endswith(("_FILE", "_FILES"))} == wanted, component(cron)
        assert len(volumes) == len(wanted), component(cron)
        for var in wanted:
            secret, key = secrets[var]
            path = Path(env[var]["value"])
            (vol,) = [n for n, m in mounts.items() if path.parent == Path(m["mountPath"])]
            assert mounts[vol]["readOnly"] is True
            assert volumes[vol]["secretName"] == secret
            assert volumes[vol]["items"] == [{"key": key, "path": path.name}]
            assert volumes[vol]["defaultMode"] & 0o007 == 0, "secret files: no world access"
        flat = json.dumps(container["args"])
        assert not SECRETISH.search(flat)
    config = of_kind(full_docs, "ConfigMap")[0]["data"]
    assert not [k for k in config if SECRETISH.search(k)]


def test_identity_only_in_verify_jobs(full_docs: list[Doc]) -> None:
    for doc in workloads(full_docs):
        has_identity = any(
            v["secretName"] == "seawall-age-identity" for v in secret_volumes(doc).values()
        )
        in_env = "ENCRYPTION_IDENTITY_FILES" in env_of(only_container(doc))
        should = "verify" in component(doc) or component(doc) == "drill"
        assert has_identity is in_env is should, doc["metadata"]["name"]


def test_exporter_gets_no_secrets(full_docs: list[Doc]) -> None:
    (exporter,) = of_kind(full_docs, "Deployment")
    assert secret_volumes(exporter) == {}
    assert not [n for n in env_of(only_container(exporter)) if n.endswith("_FILE")]


def test_encrypted_verify_without_identity_is_refused(chart: Any) -> None:
    values = {"encryption": {"enabled": True, "recipients": ["age1" + "q" * 58]}}
    with pytest.raises(helm.HelmError, match="identitySecret"):
        render_raw(chart, values)
    values["verify"] = {"enabled": False}
    with pytest.raises(helm.HelmError, match="drill restores encrypted backups"):
        render_raw(chart, values)
    values["drill"] = {"enabled": False}
    docs = render(chart, values)
    assert not any("verify" in component(c) for c in of_kind(docs, "CronJob"))
    assert all(not secret_volumes(w) for w in workloads(docs))


# --- configuration reaches seawall ------------------------------------------------


def _settings_names() -> set[str]:
    from pydantic import AliasChoices

    from seawall.settings import SECRET_FILE_VARS, Settings

    names = {n for pair in SECRET_FILE_VARS.values() for n in pair}
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str) and c.isupper())
    return names


@pytest.mark.parametrize("which", ["default", "full"])
def test_every_variable_is_a_seawall_setting(
    which: str, default_docs: list[Doc], full_docs: list[Doc]
) -> None:
    docs = full_docs if which == "full" else default_docs
    known = _settings_names() | {"HOME", "PGSSLMODE", "PGCONNECT_TIMEOUT"}
    used = set(of_kind(docs, "ConfigMap")[0]["data"])
    for doc in workloads(docs):
        used |= set(env_of(only_container(doc)))
    assert used - known == set()


@pytest.mark.parametrize("which", ["default", "full"])
def test_configmap_loads_into_settings(
    which: str, default_docs: list[Doc], full_docs: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.settings import load_settings

    docs = full_docs if which == "full" else default_docs
    config = of_kind(docs, "ConfigMap")[0]["data"]
    for name in _settings_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SEAWALL_CONFIG", raising=False)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    if which == "default":
        assert (s.retention_days, s.retention_weeks, s.retention_months) == (7, 4, 12)
        assert s.pitr_window.days == 7 and s.engines == ["postgres", "qdrant"]
        assert (s.db_host, s.qdrant_base_url) == ("postgres", "http://qdrant:6333")
    else:
        assert s.databases == ["app", "billing", "Analytics_Warehouse_With_A_Rather_Long_Name"]
        assert s.retention_years == -1 and s.pitr_window.days == 14
        assert s.encryption and len(s.encryption_recipients) == 2
        assert s.qdrant_base_url == "https://qdrant.vector.svc:6333"
        assert (s.compression_level, s.retention_tz) == (9, "Europe/Berlin")


# --- monitoring ---------------------------------------------------------------------


def test_monitoring_objects_off_by_default(default_docs: list[Doc]) -> None:
    kinds = {d["kind"] for d in default_docs}
    assert not kinds & CRD_KINDS
    assert not [c for c in of_kind(default_docs, "ConfigMap") if "dashboard" in str(c)]


def test_service_monitor_shape(full_docs: list[Doc]) -> None:
    (sm,) = of_kind(full_docs, "ServiceMonitor")
    (svc,) = of_kind(full_docs, "Service")
    (exporter,) = of_kind(full_docs, "Deployment")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = sm["spec"]["selector"]["matchLabels"]
    assert selector.items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["backup"]}
    (endpoint,) = sm["spec"]["endpoints"]
    (port,) = svc["spec"]["ports"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (
        port["name"],
        "/metrics",
        "30s",
    )
    assert port["port"] == 9900
    assert (
        svc["spec"]["selector"].items()
        <= exporter["spec"]["template"]["metadata"]["labels"].items()
    )
    container_port = only_container(exporter)["ports"][0]
    assert (container_port["name"], container_port["containerPort"]) == ("metrics", 9900)
    assert only_container(exporter)["args"][:3] == ["exporter", "--listen", "0.0.0.0:9900"]


def promtool_check(groups: list[Doc], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed: rule syntax not checked")
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def rule_groups(chart: Any, values: dict[str, Any]) -> list[Doc]:
    base: dict[str, Any] = {"prometheusRule": {"enabled": True}}
    for key, value in values.items():
        base[key] = {**base.get(key, {}), **value}
    (rule,) = of_kind(render(chart, base), "PrometheusRule")
    groups: list[Doc] = rule["spec"]["groups"]
    return groups


def alerts_by_name(groups: list[Doc]) -> dict[str, Doc]:
    return {r["alert"]: r for g in groups for r in g["rules"]}


def test_prometheus_rule_embeds_the_rules(full_docs: list[Doc], tmp_path: Path) -> None:
    """With default thresholds the rules are the tested file, job label = the Service."""
    (rule,) = of_kind(full_docs, "PrometheusRule")
    (svc,) = of_kind(full_docs, "Service")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    job = svc["metadata"]["name"]
    source = RULES_COPY.read_text().replace('job="seawall"', f'job="{job}"')
    # the PITR threshold follows the configured window (full values: 14 days)
    assert full_values()["retention"]["pitrWindow"] == "14d"
    source = source.replace(
        "< 604800  # threshold:pitrWindowMinSeconds", "< 1209600  # threshold:pitrWindowMinSeconds"
    )
    # the drill objectives follow drill.rtoObjective/rpoObjective (full values: 2h, 36h)
    assert (full_values()["drill"]["rtoObjective"], full_values()["drill"]["rpoObjective"]) == (
        "2h",
        "36h",
    )
    source = source.replace(
        "> 3600  # threshold:rtoObjectiveSeconds", "> 7200  # threshold:rtoObjectiveSeconds"
    ).replace(
        "> 86400  # threshold:rpoObjectiveSeconds", "> 129600  # threshold:rpoObjectiveSeconds"
    )
    assert rule["spec"]["groups"] == yaml.safe_load(source)["groups"]
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for r in group["rules"]:
            assert ("alert" in r) != ("record" in r) and r["expr"]
    promtool_check(rule["spec"]["groups"], tmp_path)


def test_thresholds_come_from_values(chart: Any, tmp_path: Path) -> None:
    groups = rule_groups(
        chart,
        {
            "postgres": {"basebackup": {"enabled": True}},
            "prometheusRule": {
                "exporterJob": "kube-seawall",
                "runbookBaseUrl": "https://wiki.example/runbooks",
                "thresholds": {
                    "postgresBackupMaxAgeSeconds": 90000,
                    "backupFailedFor": "10m",
                    "storageUsedRatio": 0.9,
                    "drillMaxAgeSeconds": 5000000,
                    "walArchiveStaleFor": "2m",
                    "rejectedRunsFor": "1h",
                },
            },
        },
    )
    by = alerts_by_name(groups)
    assert "> 90000  # threshold:postgresBackupMaxAgeSeconds" in by["PostgreSQLBackupOld"]["expr"]
    assert by["PostgreSQLBackupFailed"]["for"] == by["QdrantBackupFailed"]["for"] == "10m"
    assert by["QdrantFullStorageBackupFailed"]["for"] == "10m"
    assert by["SeawallRejectedRuns"]["for"] == "1h"
    assert by["PostgreSQLBackupFailed"]["expr"] == 'postgres_backup_status{type="full"} == 0'
    assert "> 0.9  # threshold:storageUsedRatio" in by["SeawallStorageAlmostFull"]["expr"]
    # an integral number stays an integer (Helm reads numbers as floats)
    assert "> 5000000  # threshold:drillMaxAgeSeconds" in by["SeawallDrillOverdue"]["expr"]
    assert by["PostgreSQLWalArchiveStale"]["for"] == "2m"
    # untouched thresholds keep their defaults
    assert "> 172800  # threshold:qdrantBackupMaxAgeSeconds" in by["QdrantBackupOld"]["expr"]
    assert by["SeawallExporterDown"]["expr"] == 'up{job="kube-seawall"} == 0'
    assert by["SeawallExporterAbsent"]["expr"] == 'absent(up{job="kube-seawall"})'
    assert by["PostgreSQLWalGap"]["annotations"]["runbook_url"] == (
        "https://wiki.example/runbooks/PostgreSQLWalGap.md"
    )
    promtool_check(groups, tmp_path)


@pytest.mark.parametrize(
    ("retention", "threshold", "expected"),
    [("7d", None, 604800), ("14d", None, 1209600), ("36h", None, 129600), ("14d", 86400, 86400)],
)
def test_pitr_threshold_follows_the_configured_window(
    chart: Any, retention: str, threshold: int | None, expected: int
) -> None:
    values: dict[str, Any] = {
        "postgres": {"basebackup": {"enabled": True}},
        "retention": {"pitrWindow": retention},
    }
    if threshold is not None:
        values["prometheusRule"] = {"thresholds": {"pitrWindowMinSeconds": threshold}}
    expr = alerts_by_name(rule_groups(chart, values))["PostgreSQLPitrWindowShort"]["expr"]
    assert f"< {expected}  # threshold:pitrWindowMinSeconds" in expr


@pytest.mark.parametrize(
    ("objectives", "thresholds", "expected"),
    [
        ({}, {}, (3600, 86400)),
        ({"rtoObjective": "2h"}, {}, (7200, 86400)),
        ({"rtoObjective": "30m", "rpoObjective": "2d"}, {}, (1800, 172800)),
        ({"rtoObjective": "2h"}, {"rtoObjectiveSeconds": 5400}, (5400, 86400)),
        ({"rpoObjective": "36h"}, {"rpoObjectiveSeconds": 3600}, (3600, 3600)),
    ],
)
def test_drill_thresholds_follow_the_drill_objectives(
    chart: Any, objectives: dict[str, str], thresholds: dict[str, int], expected: tuple[int, int]
) -> None:
    """One setting drives the drill's verdict (DRILL_RTO/RPO_OBJECTIVE of its
    CronJob) and the alerts, unless a threshold is set explicitly."""
    values: dict[str, Any] = {"prometheusRule": {"enabled": True, "thresholds": thresholds}}
    if objectives:
        values["drill"] = objectives
    docs = render(chart, values)
    (rule,) = of_kind(docs, "PrometheusRule")
    by = alerts_by_name(rule["spec"]["groups"])
    rto, rpo = expected
    assert f"> {rto}  # threshold:rtoObjectiveSeconds" in by["SeawallDrillRtoOverObjective"]["expr"]
    assert f"> {rpo}  # threshold:rpoObjectiveSeconds" in by["SeawallDrillRpoOverObjective"]["expr"]
    (drill,) = [c for c in of_kind(docs, "CronJob") if component(c) == "drill"]
    env = env_of(only_container(drill))
    defaults = {"rtoObjective": "1h", "rpoObjective": "24h"} | objectives
    assert env["DRILL_RTO_OBJECTIVE"]["value"] == defaults["rtoObjective"]
    assert env["DRILL_RPO_OBJECTIVE"]["value"] == defaults["rpoObjective"]


def test_threshold_values_are_checked(chart: Any) -> None:
    for bad in (
        {"nosuchThreshold": 1},
        {"backupFailedFor": "five minutes"},
        {"storageUsedRatio": 85},
    ):
        with pytest.raises(helm.HelmValuesError):
            render_raw(chart, {"prometheusRule": {"enabled": True, "thresholds": bad}})


def test_switched_off_components_have_no_alerts(chart: Any) -> None:
    everything = {
        n
        for n, _ in _group_names(
            rule_groups(chart, {"postgres": {"basebackup": {"enabled": True}}})
        )
    }
    assert everything == {
        "seawall.postgres",
        "seawall.qdrant",
        "seawall.pitr",
        "seawall.runs",
        "seawall.verification",
        "seawall.exporter",
        "seawall.drills",
    }
    defaults = {n for n, _ in _group_names(rule_groups(chart, {}))}
    assert defaults == everything - {"seawall.pitr"}, "base backups are off by default"
    off = rule_groups(chart, {"qdrant": {"enabled": False}, "verify": {"enabled": False}})
    names = {n for n, _ in _group_names(off)}
    assert names == everything - {"seawall.pitr", "seawall.qdrant", "seawall.verification"}
    assert not [a for a in alerts_by_name(off) if a.startswith("Qdrant")]
    no_pg = rule_groups(chart, {"postgres": {"enabled": False, "basebackup": {"enabled": True}}})
    assert not [a for a in alerts_by_name(no_pg) if a.startswith("PostgreSQL")]


def _group_names(groups: list[Doc]) -> list[tuple[str, int]]:
    return [(g["name"], len(g["rules"])) for g in groups]


#: Every component the chart can switch off, each alone and all at once.
SWITCHES: dict[str, dict[str, Any]] = {
    "postgres": {"postgres": {"enabled": False}},
    "qdrant": {"qdrant": {"enabled": False}},
    "verify": {"verify": {"enabled": False}},
    "exporter": {"exporter": {"enabled": False}},
    "serviceAccount": {"serviceAccount": {"create": False}},
    "volume": {"backupVolume": {"existingClaim": "team-backups"}},
    "monitoring": {
        "serviceMonitor": {"enabled": False},
        "prometheusRule": {"enabled": False},
        "grafanaDashboard": {"enabled": False},
    },
}


@pytest.mark.parametrize("switch", [*SWITCHES, "all"])
def test_every_component_switched_off_renders_and_validates(
    chart: Any, switch: str, tmp_path: Path
) -> None:
    values = full_values()
    chosen = list(SWITCHES.values()) if switch == "all" else [SWITCHES[switch]]
    for override in chosen:
        for key, value in override.items():
            values[key] = {**values.get(key, {}), **value}
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{K8S_VERSIONS[-1]}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report
    docs = render(chart, values)
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            kv_utils.validate(doc, K8S_VERSIONS[-1], strict=True)
    for rule in of_kind(docs, "PrometheusRule"):
        promtool_check(rule["spec"]["groups"], tmp_path)
    if switch in ("postgres", "all"):
        assert not [w for w in workloads(docs) if component(w).startswith("postgres")]
    if switch in ("qdrant", "all"):
        assert not [w for w in workloads(docs) if component(w).startswith("qdrant")]
    if switch in ("exporter", "all"):
        assert not of_kind(docs, "Deployment") and not of_kind(docs, "ServiceMonitor")
    if switch == "all":
        assert not workloads(docs)


def test_grafana_dashboard_configmap(full_docs: list[Doc]) -> None:
    (cm,) = [
        c for c in of_kind(full_docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Backups"}
    assert cm["data"]["seawall.json"] == DASHBOARD_COPY.read_text()
    assert isinstance(json.loads(cm["data"]["seawall.json"]), dict)


@pytest.mark.parametrize(
    ("source", "copy"),
    [("alerts/seawall.rules.yml", RULES_COPY), ("dashboards/seawall.json", DASHBOARD_COPY)],
)
def test_chart_copies_match_their_sources(source: str, copy: Path) -> None:
    original = ROOT / source
    if not original.exists():
        pytest.skip(f"{source} does not exist yet")
    assert copy.read_bytes() == original.read_bytes(), (
        f"charts/seawall/{copy.relative_to(CHART)} differs from {source}: "
        "run charts/seawall/sync-files.sh"
    )


def test_sync_script_copies_sources(tmp_path: Path) -> None:
    chart_copy = tmp_path / "charts" / "seawall"
    shutil.copytree(CHART, chart_copy)
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "seawall.rules.yml").write_text("groups: []\n# synced\n")
    done = subprocess.run(
        ["sh", str(chart_copy / "sync-files.sh")], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert (chart_copy / "files" / "seawall.rules.yml").read_text() == "groups: []\n# synced\n"
    assert (chart_copy / "files" / "seawall.json").read_bytes() == DASHBOARD_COPY.read_bytes()
    assert "dashboards/seawall.json: not found" in done.stderr


def test_notes_render(chart: Any) -> None:
    notes = next(t for p, t in render_raw(chart).items() if p.endswith("NOTES.txt"))
    assert '"0 2 * * *"' in notes and '"0 4 * * 0"' in notes
    assert "docs/kubernetes.md" in notes
