"""The chart's CronJob containers, run outside Kubernetes against a real PostgreSQL.

Why: the rendering tests prove the manifests are valid; they cannot prove
that the command, arguments and environment the chart puts together make
seawall do its job. Here the postgres-backup and postgres-verify containers
are taken from the rendered chart and executed as a kubelet would: the
container's command and args, only the environment the chart sets (its
ConfigMap through envFrom, then env), the Secret volumes materialised as
files with the chart's item paths and mode, as the chart's non-root uid/gid
with HOME=/tmp. The backup volume's mountPath is pointed at a temporary
directory through the chart's own value (backupVolume.mountPath).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from seawall.catalog.store import Catalog
from seawall.storage.local import LocalStorage
from tests.support.pgcluster import PASSWORD, SUPERUSER, PgCluster

helm = pytest.importorskip("helm_python")
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

Doc = dict[str, Any]


def render(values: dict[str, Any]) -> list[Doc]:
    with helm.Chart.load(ROOT / "charts" / "seawall") as chart:
        rendered = chart.render(values, name="local", namespace="backup")
    return [
        d
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d
    ]


def container_run(
    docs: list[Doc], component: str, secrets: dict[tuple[str, str], str], scratch: Path
) -> subprocess.CompletedProcess[str]:
    """Run one CronJob's container as the kubelet would; returns the result."""
    (cron,) = [
        d
        for d in docs
        if d["kind"] == "CronJob"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        assert "valueFrom" not in entry, entry
        env[entry["name"]] = entry["value"]
    # Secret volumes -> files under scratch, with the chart's items and mode
    volumes = {v["name"]: v for v in pod["volumes"]}
    uid, gid = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        local = scratch / mount["name"]
        local.mkdir(parents=True)
        for item in secret["items"]:
            target = local / item["path"]
            target.write_text(secrets[(secret["secretName"], item["key"])])
            os.chmod(target, secret["defaultMode"])
            os.chown(target, 0, pod["securityContext"]["fsGroup"])
        os.chown(local, 0, pod["securityContext"]["fsGroup"])
        os.chmod(local, 0o750)
        for name, value in env.items():
            if value.startswith(mount["mountPath"] + "/"):
                env[name] = str(local) + value[len(mount["mountPath"]) :]
    # only the chart's environment, plus the image's PATH and bytecode setting
    env["PATH"] = f"{VENV_BIN}:/usr/bin:/bin"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    assert container["command"] == ["seawall"]
    return subprocess.run(
        [*container["command"], *container["args"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        user=uid,
        group=gid,
        extra_groups=[pod["securityContext"]["fsGroup"]],
        cwd="/tmp",
    )


@pytest.mark.parametrize(
    "encrypted",
    [False, True],
    ids=["plain", "age-recipients"],
)
def test_backup_and_verify_cronjobs_run_as_rendered(
    pg: PgCluster, backup_dir: Path, age_keys: tuple[Path, str], encrypted: bool
) -> None:
    pg.psql("CREATE DATABASE app")
    pg.psql(
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 3000) g", "app"
    )
    key_file, public = age_keys
    values = {
        "backupVolume": {"mountPath": str(backup_dir)},
        "postgres": {
            "host": "127.0.0.1",
            "port": pg.port,
            "database": "app",
            "user": SUPERUSER,
            "passwordSecret": {"name": "pg-credentials", "key": "password"},
            "deepVerify": True,
        },
        "qdrant": {"enabled": False},
        "encryption": {
            "enabled": encrypted,
            "recipients": [public] if encrypted else [],
            "identitySecret": {"name": "age-identity" if encrypted else "", "key": "identity"},
        },
        "logFormat": "text",
    }
    docs = render(values)
    secrets = {
        ("pg-credentials", "password"): PASSWORD,
        ("age-identity", "identity"): key_file.read_text(),
    }
    # the volume as the chart's pod sees it: group-writable for fsGroup
    fs_group = 10001
    os.chown(backup_dir, 0, fs_group)
    os.chmod(backup_dir, 0o2770)
    # outside pytest's root-only tmp: the container's user must reach its mounts
    scratch = Path(tempfile.mkdtemp(prefix="seawall-secrets-", dir="/tmp"))
    os.chmod(scratch, 0o755)
    try:
        backup = container_run(docs, "postgres-backup", secrets, scratch / "backup")
        assert backup.returncode == 0, backup.stderr
        assert PASSWORD not in backup.stdout + backup.stderr
        (manifest,) = (
            Catalog(LocalStorage(backup_dir)).scan("postgresql", "logical", "app").manifests
        )
        assert manifest.status == "success" and manifest.stored_size > 0
        assert all((a.encryption is not None) is encrypted for a in manifest.artifacts)

        verify = container_run(docs, "postgres-verify", secrets, scratch / "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert PASSWORD not in verify.stdout + verify.stderr

        # the run is real: a wrong password in the Secret fails the same container
        secrets[("pg-credentials", "password")] = "not-the-password"
        refused = container_run(docs, "postgres-backup", secrets, scratch / "refused")
        assert refused.returncode == 5, refused.stderr
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
