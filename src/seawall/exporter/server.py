"""HTTP server: ``/metrics`` (Prometheus text format) and ``/healthz``.

The standard library's threading HTTP server is enough for one Prometheus
(or two, in HA) scraping every 15-60 s, and keeps the sidecar's footprint
and dependencies small. TLS is applied per connection with the *current*
web config (see :mod:`seawall.exporter.webconfig`), so a rotated
certificate is used by the next connection without a restart.

``/healthz`` answers 200 without basic auth (it reveals nothing and
Kubernetes probes cannot easily send credentials); it still goes over TLS
when TLS is configured. ``/metrics`` never answers 500 because of the
backup volume's content: the collector counts bad files instead.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from seawall.exporter.webconfig import WebConfig, WebConfigLoader

log = logging.getLogger("seawall.exporter.http")

HANDSHAKE_TIMEOUT = 10.0
LANDING = (
    b"<html><head><title>seawall exporter</title></head><body><h1>seawall exporter</h1>"
    b'<p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">Health</a></p></body></html>\n'
)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = "seawall-exporter"

    def do_GET(self) -> None:
        config = self.server.web.current()
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(config, 200, b"ok\n", "text/plain; charset=utf-8")
            return
        if not self.server.web.check_basic_auth(config, self.headers.get("Authorization")):
            self._send(
                config,
                401,
                b"Unauthorized\n",
                "text/plain; charset=utf-8",
                {"WWW-Authenticate": 'Basic realm="seawall exporter"'},
            )
            return
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(self.server.registry)
            except Exception:
                log.exception("scrape failed")
                self._send(config, 500, b"scrape failed; see the exporter log\n", "text/plain")
                return
            self._send(config, 200, body, content_type)
        elif path == "/":
            self._send(config, 200, LANDING, "text/html; charset=utf-8")
        else:
            self._send(config, 404, b"Not Found\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _send(
        self,
        config: WebConfig,
        status: int,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**config.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


class ExporterServer(ThreadingHTTPServer):
    """Serves a registry; TLS and auth from a :class:`WebConfigLoader`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, web: WebConfigLoader
    ) -> None:
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(address, _Handler)
        self.registry = registry
        self.web = web
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self.web.current().ssl_context is not None else "http"

    def finish_request(self, request: Any, client_address: Any) -> None:
        config = self.web.current()
        conn = request
        if config.ssl_context is not None:
            request.settimeout(HANDSHAKE_TIMEOUT)
            try:
                conn = config.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS handshake with %s failed: %s", client_address[0], exc)
                return
            conn.settimeout(60.0)
        try:
            _Handler(conn, client_address, self)
        finally:
            if conn is not request:
                with contextlib.suppress(OSError):
                    conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)

    def start_background(self) -> None:
        """Serve in a daemon thread (tests, and the command's main loop)."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="exporter-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` -> (host, port)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT (e.g. 0.0.0.0:9877), got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)
