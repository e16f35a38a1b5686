"""The Helm chart with object storage as the repository (issue 14).

Rendered with Helm's own engine and validated against Kubernetes' API
schemas like tests/integration/test_helm_chart.py (whose helpers this
reuses): S3 settings reach the ConfigMap under the ecosystem's names, keys
come from existing Secrets as mounted files only (the exporter gets its own
read-only key), a service account role works without keys, and no
PersistentVolumeClaim is created or mounted unless asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_helm_chart import (
    CHART,
    CRD_KINDS,
    K8S_VERSIONS,
    SECRETISH,
    Doc,
    _settings_names,
    component,
    env_of,
    helm,
    kv_utils,
    of_kind,
    only_container,
    pod_spec,
    render,
    render_raw,
    secret_volumes,
    workloads,
)

S3_VALUES_FILE = CHART / "ci" / "s3-values.yaml"
S3_CONFIG = Path(__file__).resolve().parents[2] / "src" / "seawall" / "storage" / "s3" / "config.py"
#: What the S3 backend and the SDK read (storage/s3/config.py names every one of them)
S3_VARS = {
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_CA_BUNDLE",
    "S3_ADDRESSING_STYLE",
    "S3_SSE",
    "S3_SSE_KMS_KEY_ID",
    "AWS_ACCESS_KEY_ID_FILE",
    "AWS_SECRET_ACCESS_KEY_FILE",
    "AWS_SESSION_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
}
#: issue 14 settings other branches add to settings.py (MIRRORS, MAX_RATE)
NEW_SETTINGS = {"MIRRORS", "MAX_RATE"}


def s3_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(S3_VALUES_FILE.read_text())
    return values


@pytest.fixture(scope="module")
def chart() -> Any:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def s3_docs(chart: Any) -> list[Doc]:
    return render(chart, s3_values())


def test_the_s3_variable_names_are_the_backends() -> None:
    text = S3_CONFIG.read_text()
    for name in S3_VARS:
        assert name.removesuffix("_FILE") in text, name


def test_lint_and_kubernetes_schemas(chart: Any, s3_docs: list[Doc]) -> None:
    chart.validate_schema(s3_values())
    for version in K8S_VERSIONS:
        report = helm.lint(CHART, s3_values(), strict=True, kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert report["errors"] == [] and problems == [], (version, report)
        for doc in s3_docs:
            if doc["kind"] not in CRD_KINDS:
                kv_utils.validate(doc, version, strict=True)


def test_no_claim_and_no_volume_with_object_storage(s3_docs: list[Doc]) -> None:
    assert not of_kind(s3_docs, "PersistentVolumeClaim")
    for doc in workloads(s3_docs):
        assert "backups" not in {v["name"] for v in pod_spec(doc)["volumes"]}
        assert "backups" not in {m["name"] for m in only_container(doc)["volumeMounts"]}
    drill = [c for c in of_kind(s3_docs, "CronJob") if component(c) == "drill"]
    assert drill and "--report" not in only_container(drill[0])["args"], "no volume for reports"


def test_s3_settings_reach_the_configmap(s3_docs: list[Doc]) -> None:
    config = of_kind(s3_docs, "ConfigMap")[0]["data"]
    assert config["BACKUP_DIR"] == "s3://acme-backups/prod"
    assert config["MIRRORS"] == "s3://acme-offsite/prod"
    assert config["MAX_RATE"] == "50MiB"
    assert config["AWS_ENDPOINT_URL_S3"] == "https://minio.storage.svc:9000"
    assert config["AWS_REGION"] == "eu-central-1"
    assert config["S3_ADDRESSING_STYLE"] == "path"
    assert (config["S3_SSE"], config["S3_SSE_KMS_KEY_ID"]) == ("aws:kms", "alias/seawall")
    assert config["AWS_CA_BUNDLE"] == "/etc/seawall/s3-ca/ca.crt"
    assert not [k for k in config if SECRETISH.search(k)]
    known = _settings_names() | S3_VARS | NEW_SETTINGS | {"HOME"}
    used = set(config)
    for doc in workloads(s3_docs):
        used |= set(env_of(only_container(doc)))
    assert used - known == set()


def test_configmap_loads_into_settings_and_the_s3_options(
    s3_docs: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.settings import load_settings
    from seawall.storage.s3.config import s3_options

    config = of_kind(s3_docs, "ConfigMap")[0]["data"]
    for name in _settings_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SEAWALL_CONFIG", raising=False)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    assert load_settings().repository == "s3://acme-backups/prod"
    opts = s3_options(config)
    assert opts.endpoint_url == "https://minio.storage.svc:9000"
    assert (opts.region, opts.addressing_style) == ("eu-central-1", "path")
    assert opts.ca_bundle == "/etc/seawall/s3-ca/ca.crt"
    assert opts.extra_put_args == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/seawall",
    }


def _s3_files(doc: Doc) -> tuple[str, dict[str, str]]:
    """The Secret a pod's S3 keys come from, and variable -> the key in it."""
    container = only_container(doc)
    env = env_of(container)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    secret = secret_volumes(doc)["s3-credentials"]
    assert mounts["s3-credentials"]["readOnly"] is True
    assert secret["defaultMode"] & 0o007 == 0, "secret files: no world access"
    items = {i["path"]: i["key"] for i in secret["items"]}
    found = {}
    for var in ("AWS_ACCESS_KEY_ID_FILE", "AWS_SECRET_ACCESS_KEY_FILE", "AWS_SESSION_TOKEN_FILE"):
        path = Path(env[var]["value"])
        assert path.parent == Path(mounts["s3-credentials"]["mountPath"]), var
        found[var] = items[path.name]
    return str(secret["secretName"]), found


def test_keys_reach_every_pod_as_files_from_existing_secrets(s3_docs: list[Doc]) -> None:
    keys = {
        "AWS_ACCESS_KEY_ID_FILE": "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY_FILE": "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN_FILE": "AWS_SESSION_TOKEN",
    }
    for doc in workloads(s3_docs):
        container = only_container(doc)
        for name, entry in env_of(container).items():
            assert "valueFrom" not in entry, name
            if SECRETISH.search(name):
                assert name.endswith(("_FILE", "_FILES")), f"{name} carries a secret in env"
        secret, found = _s3_files(doc)
        assert found == keys
        reader = doc["kind"] == "Deployment"
        assert secret == ("seawall-s3-ro" if reader else "seawall-s3-rw"), doc["metadata"]["name"]
        ca = {v["name"]: v for v in pod_spec(doc)["volumes"]}["s3-ca"]
        assert ca["configMap"] == {
            "name": "minio-ca",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
    (exporter,) = of_kind(s3_docs, "Deployment")
    args = only_container(exporter)["args"]
    assert args[args.index("--refresh-interval") + 1] == "120"


def test_a_service_account_role_instead_of_keys(chart: Any) -> None:
    values = s3_values()
    values["repository"]["s3"]["credentials"] = {"existingSecret": ""}
    values["repository"]["s3"]["caBundle"] = {"secret": "corp-ca", "key": "bundle.pem"}
    values["repository"]["s3"]["webIdentity"] = {
        "roleArn": "arn:aws:iam::123456789012:role/seawall"
    }
    values["serviceAccount"] = {
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/seawall"}
    }
    docs = render(chart, values)
    (sa,) = of_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("role/seawall")
    for doc in workloads(docs):
        kv_utils.validate(doc, K8S_VERSIONS[-1], strict=True)
        env = env_of(only_container(doc))
        assert not [n for n in env if n.startswith("AWS_") and "KEY" in n], "no keys at all"
        assert env["AWS_ROLE_ARN"]["value"] == "arn:aws:iam::123456789012:role/seawall"
        token = Path(env["AWS_WEB_IDENTITY_TOKEN_FILE"]["value"])
        volumes = {v["name"]: v for v in pod_spec(doc)["volumes"]}
        mounts = {m["name"]: m for m in only_container(doc)["volumeMounts"]}
        assert token.parent == Path(mounts["web-identity"]["mountPath"])
        (source,) = volumes["web-identity"]["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "sts.amazonaws.com"
        assert source["serviceAccountToken"]["path"] == token.name
        assert volumes["s3-ca"]["secret"]["secretName"] == "corp-ca"
        assert volumes["s3-ca"]["secret"]["items"] == [{"key": "bundle.pem", "path": "ca.crt"}]


def test_a_volume_beside_object_storage_and_a_mirror_on_it(chart: Any) -> None:
    values = s3_values()
    values["backupVolume"] = {"enabled": True, "mountPath": "/backups"}
    values["repository"]["mirrors"] = ["/backups/mirror", "s3://acme-offsite/prod"]
    docs = render(chart, values)
    assert of_kind(docs, "PersistentVolumeClaim")
    for doc in workloads(docs):
        assert "backups" in {m["name"] for m in only_container(doc)["volumeMounts"]}
    assert (
        of_kind(docs, "ConfigMap")[0]["data"]["MIRRORS"] == "/backups/mirror,s3://acme-offsite/prod"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backupVolume": {"enabled": False}, "repository": {"url": ""}}, "needs repository.url"),
        (
            {"repository": {"url": "s3://acme-backups/prod", "mirrors": ["/mnt/nas"]}},
            "pods mount only backupVolume.mountPath",
        ),
        (
            {
                "repository": {
                    "url": "s3://acme-backups/prod",
                    "s3": {"caBundle": {"configMap": "a", "secret": "b"}},
                }
            },
            "configMap or secret, not both",
        ),
    ],
)
def test_impossible_combinations_are_refused(
    chart: Any, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render_raw(chart, change)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"repository": {"url": "backups/prod"}}, "/repository/url"),
        ({"repository": {"url": "gs://bucket"}}, "/repository/url"),
        ({"repository": {"mirrors": ["relative/path"]}}, "/repository/mirrors/0"),
        ({"repository": {"s3": {"sse": "aes256"}}}, "/repository/s3/sse"),
        ({"repository": {"s3": {"addressingStyle": "dns"}}}, "/repository/s3/addressingStyle"),
        ({"repository": {"s3": {"accessKey": "AKIA"}}}, "/repository/s3"),
        ({"maxRate": "fast"}, "/maxRate"),
    ],
)
def test_schema_rejects_bad_s3_values(chart: Any, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as info:
        render_raw(chart, values)
    assert where in str(info.value)
