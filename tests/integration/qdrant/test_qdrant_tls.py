"""HTTPS with a private CA (QDRANT_CA_BUNDLE): a TLS-terminating proxy on
127.0.0.1 in front of the Qdrant test server, with a CA made for the test."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from seawall.app.backup import qdrant_backup as backup
from seawall.errors import ConfigError, SourceUnavailableError
from tests.qdrant_server import QdrantTestServer

from .conftest import MakeCtx


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server cert.pem, server key.pem) for 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("seawall test CA"))
        .issuer_name(_name("seawall test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


class TlsProxy:
    """Accept TLS on 127.0.0.1, forward plain bytes to ``upstream_port``."""

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        self.upstream = upstream_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        up = socket.create_connection(("127.0.0.1", self.upstream))

        def pump(src: Any, dst: Any) -> None:
            try:
                while data := src.recv(1 << 16):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.close()

        threading.Thread(target=pump, args=(up, tls), daemon=True).start()
        pump(tls, up)

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[QdrantTestServer, TlsProxy, Path]]:
    ca, cert, key = make_ca_and_cert(tmp_path)
    with QdrantTestServer() as server:
        proxy = TlsProxy(server.port, cert, key)
        try:
            yield server, proxy, ca
        finally:
            proxy.stop()


def test_https_with_a_private_ca(
    tls: tuple[QdrantTestServer, TlsProxy, Path], make_ctx: MakeCtx
) -> None:
    server, proxy, ca = tls
    server.create_collection("tls", 4, points=10, seed=1)
    ctx = make_ctx(None, qdrant_url=f"https://127.0.0.1:{proxy.port}", qdrant_ca_bundle=ca)
    run = backup(ctx)
    run.raise_for_status()
    assert run.results[0].manifest is not None
    assert run.results[0].manifest.target.startswith("https://127.0.0.1:")


def test_https_without_the_ca_is_a_clear_error(
    tls: tuple[QdrantTestServer, TlsProxy, Path], make_ctx: MakeCtx, tmp_path: Path
) -> None:
    _server, proxy, _ca = tls
    ctx = make_ctx(None, qdrant_url=f"https://127.0.0.1:{proxy.port}")
    with pytest.raises(SourceUnavailableError, match="QDRANT_CA_BUNDLE"):
        backup(ctx)
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("hello")
    with pytest.raises(ConfigError, match="QDRANT_CA_BUNDLE"):
        backup(make_ctx(None, qdrant_url="https://127.0.0.1:1", qdrant_ca_bundle=bogus))
