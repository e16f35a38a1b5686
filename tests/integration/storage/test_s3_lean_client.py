"""The lean S3 client (seawall.storage.s3.lean) against a real SeaweedFS, over HTTP and TLS.

The WAL tests drive it through wal-push/wal-fetch; these pin down the client
itself: every operation, the conditional create the one-version rule leans
on, listing with a prefix and pagination, and TLS with a private CA
(``AWS_CA_BUNDLE``) — trusted, and refused in one line when not (an
unknown CA, a certificate for another host name). TLS is spoken through
``_ssl`` without the ``ssl`` module (storage/s3/leannet.py), and through
``ssl`` where ``_ssl`` lacks what that needs: both are exercised, and so
are connections reset or cut inside TLS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall.ports import free_loopback_port
from seawall.storage.s3 import leannet
from seawall.storage.s3.lean import Client
from seawall.storage.s3.leanconf import S3Error, config_from_env
from tests.integration.storage.conftest import new_bucket, serve_s3
from tests.support.faultproxy import FaultProxy
from tests.support.s3server import S3Server


@pytest.fixture(scope="module")
def tls_server() -> Iterator[S3Server]:
    yield from serve_s3("seawall-s3tls-", tls=True)


def _client(server: S3Server, url: str, **extra: str) -> Client:
    env = {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint,
        **extra,
    }
    return Client(config_from_env(url, env), deadline=5)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ssl_module_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS through the ``ssl`` module, as on an interpreter whose ``_ssl`` differs."""
    monkeypatch.setattr(leannet, "_FORCE_SSL_MODULE", True)
    assert not leannet.tls_lean_available()


@pytest.mark.parametrize(
    "secure, fallback",
    [(False, False), (True, False), (True, True)],
    ids=["http", "tls", "tls-ssl-module"],
)
def test_operations_and_conditional_create(
    tls_server: S3Server, secure: bool, fallback: bool, request: pytest.FixtureRequest
) -> None:
    if fallback:
        request.getfixturevalue("ssl_module_fallback")
    else:
        assert leannet.tls_lean_available()  # this interpreter: the lean TLS is what runs
    bucket = new_bucket(tls_server)
    extra = (
        {"AWS_ENDPOINT_URL": tls_server.https_endpoint, "AWS_CA_BUNDLE": str(tls_server.ca_file)}
        if secure
        else {}
    )
    client = _client(tls_server, f"s3://{bucket}/pre/fix", **extra)
    try:
        first, second = b"first version", b"second version"
        assert client.put("a/key with space+plus", [first], _sha(first), if_none_match=True) == 200
        # the conditional create: the key exists, nothing is overwritten
        assert (
            client.put("a/key with space+plus", [second], _sha(second), if_none_match=True) == 412
        )
        assert client.get("a/key with space+plus") == first
        head = client.head("a/key with space+plus")
        assert head is not None and head["content-length"] == str(len(first))
        assert client.get("a/missing") is None and client.head("a/missing") is None
        big = bytes(range(256)) * 40_000  # 10 MB in several pieces, one PUT
        pieces = [big[i : i + 1_000_000] for i in range(0, len(big), 1_000_000)]
        assert client.put("a/big", pieces, _sha(big)) == 200
        assert client.get("a/big") == big
        stored = tls_server.client().get_object(Bucket=bucket, Key="pre/fix/a/big")
        assert stored["Body"].read() == big  # what boto3 reads is what we wrote
        for i in range(5):
            client.put(f"b/{i:02d}", [b"x"], _sha(b"x"))
        listed = [e.key for e in client.list("b/")]
        assert listed == [f"b/{i:02d}" for i in range(5)]
        client.delete("b/00")
        assert [e.key for e in client.list("b/")] == [f"b/{i:02d}" for i in range(1, 5)]
        assert client.list("nothing/") == []
    finally:
        client.close()


def test_listing_paginates(s3_server: S3Server) -> None:
    """More keys than one ListObjectsV2 page (SeaweedFS: 1,000): all of them, in order."""
    bucket = new_bucket(s3_server)
    admin = s3_server.client()
    for i in range(1005):
        admin.put_object(Bucket=bucket, Key=f"p/{i:05d}", Body=b"")
    client = _client(s3_server, f"s3://{bucket}")
    try:
        keys = [e.key for e in client.list("p/")]
    finally:
        client.close()
    assert keys == [f"p/{i:05d}" for i in range(1005)]


@pytest.mark.parametrize("fallback", [False, True], ids=["lean", "ssl-module"])
def test_tls_without_the_ca_is_refused_in_one_line(
    tls_server: S3Server, fallback: bool, request: pytest.FixtureRequest
) -> None:
    if fallback:
        request.getfixturevalue("ssl_module_fallback")
    bucket = new_bucket(tls_server)
    client = _client(tls_server, f"s3://{bucket}", AWS_ENDPOINT_URL=tls_server.https_endpoint)
    try:
        with pytest.raises(S3Error) as err:
            client.get("anything")
    finally:
        client.close()
    message = str(err.value)
    assert err.value.kind == "unreachable"
    assert "not trusted" in message and "AWS_CA_BUNDLE" in message and "\n" not in message


@contextlib.contextmanager
def _tls_listener(cert: Path, key: Path) -> Iterator[int]:
    """A TLS server on 127.0.0.1 presenting ``cert`` (the test's own, via ``ssl``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    port = free_loopback_port()
    listener = socket.create_server(("127.0.0.1", port))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield port
    finally:
        stop.set()
        listener.close()


@pytest.mark.parametrize("fallback", [False, True], ids=["lean", "ssl-module"])
def test_tls_certificate_for_another_host_is_refused(
    tmp_path: Path, fallback: bool, request: pytest.FixtureRequest
) -> None:
    """A certificate the CA bundle trusts, but issued for another name than the endpoint's:
    refused, not retried (the host name is checked, not only the chain)."""
    if fallback:
        request.getfixturevalue("ssl_module_fallback")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=elsewhere.invalid",
         "-addext", "subjectAltName=DNS:elsewhere.invalid"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with _tls_listener(cert, key) as port:
        env = {
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "not-a-secret",
            "AWS_ENDPOINT_URL": f"https://127.0.0.1:{port}",
            "AWS_CA_BUNDLE": str(cert),
        }
        client = Client(config_from_env("s3://bucket", env), deadline=5)
        try:
            with pytest.raises(S3Error) as err:
                client.get("anything")
        finally:
            client.close()
    assert err.value.kind == "unreachable"
    assert "not trusted" in str(err.value) and "127.0.0.1" in str(err.value)


def test_tls_connections_reset_or_cut_are_retried(tls_server: S3Server) -> None:
    """Inside TLS: a reset before the handshake, an answer cut mid-body (an EOF without
    TLS close_notify), a request byte flipped on the wire (the server's record MAC
    fails): each is retried on a new connection and the data comes back whole."""
    bucket = new_bucket(tls_server)
    data = os.urandom(300_000)
    proxy = FaultProxy(tls_server.ports["s3_https"])
    try:
        client = _client(
            tls_server,
            f"s3://{bucket}",
            AWS_ENDPOINT_URL=f"https://localhost:{proxy.port}",
            AWS_CA_BUNDLE=str(tls_server.ca_file),
        )
        try:
            proxy.plan.extend(["reset", ("flip", 4000)])
            assert client.put("k", [data], _sha(data)) == 200
            client.close()
            proxy.plan.append(("cut", 100_000))
            assert client.get("k") == data
        finally:
            client.close()
        assert proxy.faults == 3
    finally:
        proxy.close()


TLS_IMPORTS = """
import sys
from seawall.storage.s3.lean import Client
from seawall.storage.s3.leanconf import config_from_env
client = Client(config_from_env(sys.argv[1]))
client.put("k", [b"x"], "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
ok = client.get("k") == b"x"
modules = sorted(sys.modules)
import json  # after the snapshot: json imports re
print(json.dumps({"ok": ok, "modules": modules}))
"""


def test_tls_loads_neither_socket_nor_ssl(tls_server: S3Server) -> None:
    """The point of leannet.py (~20 ms per wal-push): a TLS exchange in a fresh process
    without ``socket``, ``ssl``, ``selectors``, ``enum``, ``re``, ``base64`` or the idna codec."""
    bucket = new_bucket(tls_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=tls_server.access_key,
        AWS_SECRET_ACCESS_KEY=tls_server.secret_key,
        AWS_ENDPOINT_URL=tls_server.https_endpoint,
        AWS_CA_BUNDLE=str(tls_server.ca_file),
    )
    res = subprocess.run(
        [sys.executable, "-c", TLS_IMPORTS, f"s3://{bucket}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["ok"]
    loaded = [
        m
        for m in ("socket", "ssl", "selectors", "enum", "re", "base64", "encodings.idna")
        if m in out["modules"]
    ]
    assert loaded == []
