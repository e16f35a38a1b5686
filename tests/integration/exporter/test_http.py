"""Real HTTP on 127.0.0.1: scrape + promtool, basic auth, TLS, mTLS, rotation."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import bcrypt
import httpx
import pytest

from seawall.catalog.locks import series_lock
from seawall.errors import ConfigError
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.metrics_def import METRICS
from seawall.exporter.repositories import Repositories
from seawall.exporter.server import ExporterServer, parse_listen
from seawall.exporter.wal_watch import WalWatcher
from seawall.exporter.webconfig import WebConfigLoader
from seawall.storage.factory import open_storage
from tests.integration.exporter.builders import (
    T0,
    manifest_path,
    segment,
    write_backup,
    write_base,
    write_drill,
    write_rejected,
    write_wal,
)
from tests.integration.exporter.certs import issue, make_ca, make_pki

PROMTOOL = "/usr/bin/promtool"

ServerFactory = Callable[..., ExporterServer]

# watchdog warns (harmlessly) when a directory is created twice in a race
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[tuple[ExporterServer, WalWatcher]] = []

    def factory(
        root: Path | None = None, web_config: Path | None = None, mirror: Path | None = None
    ) -> ExporterServer:
        root = root or tmp_path / "backups"
        wal = WalWatcher(root, rescan_interval=3600)
        wal.start()
        repos = None
        if mirror is not None:
            repos = Repositories.of(
                (str(root), open_storage(root)), [(str(mirror), open_storage(mirror))]
            )
        collector = SeawallCollector(root, wal=wal, repositories=repos)
        server = ExporterServer(
            ("127.0.0.1", 0), make_registry(collector), WebConfigLoader(web_config)
        )
        server.start_background()
        started.append((server, wal))
        return server

    yield factory
    for server, wal in started:
        server.stop()
        wal.stop()


def full_catalog(root: Path) -> None:
    """A catalog where every metric family has at least one sample."""
    write_backup(root, "postgresql", "logical", "app", finished=T0, verified=True)
    write_backup(
        root, "postgresql", "logical", "app", finished=T0 + timedelta(hours=1), status="failed"
    )
    write_backup(root, "qdrant", "snapshot", "docs", finished=T0)
    write_base(root, "main", finished=T0, start_wal=segment(1, 1), stop_wal=segment(1, 1))
    for segno in (1, 2, 4):
        write_wal(root, "main", segment(1, segno))
    write_drill(root, "postgresql", "app", finished=T0, ok=True, rto=120.0, rpo=30.0)
    write_rejected(root, "postgresql", "logical", "nosuch", finished=T0)
    bad = write_backup(root, "qdrant", "snapshot", "docs", finished=T0 + timedelta(hours=2))
    manifest_path(root, bad).write_text("{ not json")


def test_scrape_passes_promtool_and_serves_every_metric(
    serve: ServerFactory, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    full_catalog(root)
    # tiers need a policy; this server has none, so that family is absent;
    # the mirror lag and listing metrics need a mirror
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    server = serve(root, mirror=mirror)
    with series_lock(root, "postgresql", "logical", "app", timeout=1, command="test"):
        resp = httpx.get(f"http://127.0.0.1:{server.port}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    body = resp.text
    served = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE")}
    missing = set(METRICS) - served - {"seawall_backups_by_tier"}
    assert not missing, f"metrics without samples: {sorted(missing)}"
    assert "seawall_catalog_errors 1.0" in body
    assert 'seawall_wal_gaps{cluster="main"} 1.0' in body
    check = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr

    assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").text == "ok\n"
    assert httpx.get(f"http://127.0.0.1:{server.port}/nope").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{server.port}/").status_code == 200
    # OpenMetrics negotiation works too (Prometheus asks for it)
    om = httpx.get(
        f"http://127.0.0.1:{server.port}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")


def test_missing_backup_dir_serves_200(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve(tmp_path / "does-not-exist")
    resp = httpx.get(f"http://127.0.0.1:{server.port}/metrics")
    assert resp.status_code == 200
    assert "seawall_backup_dir_accessible 0.0" in resp.text


def _web_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_basic_auth(serve: ServerFactory, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret pass", bcrypt.gensalt(rounds=4)).decode()
    # htpasswd writes $2y$; accept it as exporter-toolkit does
    cfg = _web_config(
        tmp_path / "web.yml",
        f"basic_auth_users:\n  prometheus: '{hashed}'\n  other: '{hashed.replace('$2b$', '$2y$', 1)}'\n",
    )
    server = serve(web_config=cfg)
    url = f"http://127.0.0.1:{server.port}/metrics"
    none = httpx.get(url)
    assert none.status_code == 401
    assert none.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(url, auth=("prometheus", "wrong")).status_code == 401
    assert httpx.get(url, auth=("nobody", "s3cret pass")).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Basic !!!"}).status_code == 401
    ok = httpx.get(url, auth=("prometheus", "s3cret pass"))
    assert ok.status_code == 200 and "seawall_build_info" in ok.text
    assert httpx.get(url, auth=("prometheus", "s3cret pass")).status_code == 200  # cached path
    assert httpx.get(url, auth=("other", "s3cret pass")).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200


def _client_ctx(ca: Path | None, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def test_tls_needs_the_ca(serve: ServerFactory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    cfg = _web_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        "  min_version: TLS12\n",
    )
    server = serve(web_config=cfg)
    url = f"https://127.0.0.1:{server.port}/metrics"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, verify=_client_ctx(None))
    assert httpx.get(url, verify=_client_ctx(pki.ca)).status_code == 200
    # plain HTTP on a TLS port does not get metrics
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    # below min_version is refused
    old = _client_ctx(pki.ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    assert httpx.get(url, verify=old).status_code == 200
    strict = _web_config(
        tmp_path / "web13.yml",
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        "  min_version: TLS13\n",
    )
    server13 = serve(web_config=strict)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{server13.port}/metrics", verify=old)


def test_mtls_and_tls_with_basic_auth(serve: ServerFactory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    cfg = _web_config(
        tmp_path / "web.yml",
        "tls_server_config:\n"
        f"  cert_file: {pki.server_cert.name}\n  key_file: {pki.server_key.name}\n"
        f"  client_ca_file: {pki.ca.name}\n  client_auth_type: RequireAndVerifyClientCert\n"
        f"basic_auth_users:\n  prom: '{hashed}'\n"
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
    )
    server = serve(web_config=cfg)
    url = f"https://127.0.0.1:{server.port}/metrics"
    # no client certificate: the handshake (or the first read) fails
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, verify=_client_ctx(pki.ca), auth=("prom", "pw"))
    # a client certificate from another CA fails too
    (tmp_path / "other").mkdir()
    _, other_key, other_ca = make_ca(tmp_path / "other", cn="other CA")
    other = issue(tmp_path, "intruder", other_key, other_ca, server=False)
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, verify=_client_ctx(pki.ca, other), auth=("prom", "pw"))
    good = _client_ctx(pki.ca, (pki.client_cert, pki.client_key))
    assert httpx.get(url, verify=good).status_code == 401
    resp = httpx.get(url, verify=good, auth=("prom", "pw"))
    assert resp.status_code == 200
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_certificate_rotates_without_restart(serve: ServerFactory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    cfg = _web_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n",
    )
    server = serve(web_config=cfg)
    url = f"https://127.0.0.1:{server.port}/healthz"
    assert httpx.get(url, verify=_client_ctx(pki.ca)).status_code == 200
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    new_ca, new_key, new_ca_obj = make_ca(new_dir, cn="rotated CA")
    cert, key = issue(new_dir, "server", new_key, new_ca_obj, server=True)
    # replace the files in place, as cert-manager's secret update does
    os.replace(key, pki.server_key)
    os.replace(cert, pki.server_cert)
    deadline = time.monotonic() + 5
    while True:
        try:
            assert httpx.get(url, verify=_client_ctx(new_ca)).status_code == 200
            break
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, verify=_client_ctx(pki.ca))
    # a broken config keeps the last good one in force
    cfg.write_text("tls_server_config:\n  cert_file: /nonexistent\n  key_file: /nonexistent\n")
    assert httpx.get(url, verify=_client_ctx(new_ca)).status_code == 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus: 1\n", "unknown key"),
        ("basic_auth_users:\n  u: plaintext\n", "bcrypt"),
        ("tls_server_config:\n  cert_file: x\n", "key_file"),
        ("tls_server_config:\n  cert_file: /no/such\n  key_file: /no/such\n", "cannot load"),
        ("tls_server_config: {cert_file: a, key_file: b, min_version: SSL3}\n", "TLS version"),
        (": [\n", "YAML"),
    ],
)
def test_invalid_web_config_is_refused_at_start(tmp_path: Path, text: str, message: str) -> None:
    path = _web_config(tmp_path / "web.yml", text)
    with pytest.raises(ConfigError, match=message):
        WebConfigLoader(path)


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:9877") == ("0.0.0.0", 9877)
    assert parse_listen(":9877") == ("0.0.0.0", 9877)
    assert parse_listen("[::1]:9877") == ("::1", 9877)
    with pytest.raises(ValueError):
        parse_listen("9877")
