"""The chart's exporter container, run as rendered against a real S3 server.

Why: tests/integration/test_helm_chart_s3.py proves the manifests are valid;
it cannot prove that the ConfigMap, the ``*_FILE`` variables and the mounted
Secret files the chart puts together make ``seawall exporter`` read an S3
repository and its mirror. Here the exporter Deployment's container is
taken from the rendered chart and executed as a kubelet would (only the
chart's environment, the Secret materialised as files with the chart's item
paths and mode, the chart's non-root uid), with the read-only identity of
the S3 server as ``exporterSecret``: the exporter needs no write permission.
The one change: ``--listen`` binds 127.0.0.1 instead of 0.0.0.0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from seawall.ports import free_loopback_port
from tests.integration.exporter.test_repositories_s3 import catalog, s3_storage, upload, wait_for
from tests.integration.storage.conftest import new_bucket, s3_server
from tests.support.s3server import S3Server

__all__ = ["s3_server"]  # the fixture, used by name below

helm = pytest.importorskip("helm_python")
ROOT = Path(__file__).resolve().parents[3]
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


def test_rendered_exporter_reads_s3_and_its_mirror_with_a_read_only_key(
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    root = tmp_path / "backups"
    catalog(root)
    primary, mirror = new_bucket(s3_server), new_bucket(s3_server)
    url, mirror_url = f"s3://{primary}/prod", f"s3://{mirror}/prod"
    upload(root, s3_storage(s3_server, url))
    upload(root, s3_storage(s3_server, mirror_url), only=lambda k: not k.startswith("qdrant/"))
    docs = render(
        {
            "repository": {
                "url": url,
                "mirrors": [mirror_url],
                "s3": {
                    "endpoint": s3_server.endpoint,
                    "region": "us-east-1",
                    "credentials": {"existingSecret": "s3-rw", "exporterSecret": "s3-ro"},
                },
            },
            "exporter": {"refreshInterval": 1},
            "logFormat": "text",
        }
    )
    secrets = {
        ("s3-ro", "AWS_ACCESS_KEY_ID"): s3_server.ro_access_key,
        ("s3-ro", "AWS_SECRET_ACCESS_KEY"): s3_server.ro_secret_key,
    }
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        assert "valueFrom" not in entry, entry
        env[entry["name"]] = entry["value"]
    assert "backups" not in {v["name"] for v in pod["volumes"]}, "no volume with object storage"
    volumes = {v["name"]: v for v in pod["volumes"]}
    fs_group = pod["securityContext"]["fsGroup"]
    scratch = Path(tempfile.mkdtemp(prefix="seawall-secrets-", dir="/tmp"))
    os.chmod(scratch, 0o755)
    port = free_loopback_port()
    args = list(container["args"])
    args[args.index("--listen") + 1] = f"127.0.0.1:{port}"
    log = tmp_path / "exporter.log"
    proc = None
    try:
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
                os.chown(target, 0, fs_group)
            os.chown(local, 0, fs_group)
            os.chmod(local, 0o750)
            for name, value in env.items():
                if value.startswith(mount["mountPath"] + "/"):
                    env[name] = str(local) + value[len(mount["mountPath"]) :]
        assert env["AWS_ACCESS_KEY_ID_FILE"].startswith(str(scratch))
        env["PATH"] = f"{VENV_BIN}:/usr/bin:/bin"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*container["command"], *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=pod["securityContext"]["runAsUser"],
                group=pod["securityContext"]["runAsGroup"],
                extra_groups=[fs_group],
                cwd="/tmp",
            )

        def metrics() -> str:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(log.read_text())
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                return ""

        qdrant_objects = sum(1 for p in (root / "qdrant").rglob("*") if p.is_file())
        lag = f'seawall_mirror_lag_objects{{repository="{mirror_url}"}} {qdrant_objects:.1f}'
        wait_for(lambda: lag in metrics())
        body = metrics()
        assert f'seawall_repository_reachable{{repository="{url}"}} 1.0' in body
        assert f'seawall_repository_reachable{{repository="{mirror_url}"}} 1.0' in body
        assert "seawall_backup_dir_accessible 1.0" in body
        assert 'seawall_backups{engine="postgresql",kind="logical",series="app"} 1.0' in body
        assert s3_server.ro_secret_key not in body + log.read_text()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(scratch, ignore_errors=True)
