"""HTTP server: ``/metrics`` (Prometheus text format) and ``/healthz``.

The standard library's threading HTTP server is enough for one Prometheus
(or two, in HA) scraping every 15-60 s, and keeps the sidecar's footprint
and dependencies small. TLS is applied per connection with the *current*
web config (see :mod:`seawall.exporter.webconfig`), so a rotated
certificate is used by the next connection without a restart.

Connections are bounded in time and number, over plain HTTP as over TLS: a
client gets ``IDLE_TIMEOUT`` seconds for every read and write (a request
that never completes, an idle keep-alive connection), and at most
``MAX_CONNECTIONS`` connections are open at once. When a new connection
would exceed the cap, the oldest connection that is not in the middle of
answering a request (idle, or still sending its request) is closed: a flood
of half-open connections can neither pile up threads nor lock Prometheus
out.

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
#: Seconds a connection may wait on any single read or write (plain and TLS).
IDLE_TIMEOUT = 60.0
#: Open connections at most (one thread each); Prometheus needs one or two.
MAX_CONNECTIONS = 64
LANDING = (
    b"<html><head><title>seawall exporter</title></head><body><h1>seawall exporter</h1>"
    b'<p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">Health</a></p></body></html>\n'
)


class _Conn:
    """One open connection: its socket (plain or TLS) and whether a request
    is being answered on it (then it is not evicted)."""

    __slots__ = ("busy", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.busy = False


_current = threading.local()


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = "seawall-exporter"

    def handle_one_request(self) -> None:
        conn: _Conn | None = getattr(_current, "conn", None)
        try:
            super().handle_one_request()
        finally:
            if conn is not None:
                conn.busy = False  # answered: idle until the next request

    def parse_request(self) -> bool:
        ok = super().parse_request()
        conn: _Conn | None = getattr(_current, "conn", None)
        if ok and conn is not None:
            conn.busy = True  # the whole request is in: answer it, do not evict
        return ok

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
    request_queue_size = 128  # listen backlog (socketserver's default is 5)

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        web: WebConfigLoader,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(address, _Handler)
        self.registry = registry
        self.web = web
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._conns: dict[_Conn, None] = {}  # insertion order: oldest first
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def _admit(self, conn: _Conn) -> bool:
        """Register ``conn``, evicting the oldest idle connection when at the cap."""
        with self._conns_lock:
            if len(self._conns) >= self.max_connections:
                victim = next((c for c in self._conns if not c.busy), None)
                if victim is None:
                    return False  # every connection is answering a request
                del self._conns[victim]
                with contextlib.suppress(OSError, AttributeError, ValueError):
                    victim.sock.shutdown(socket.SHUT_RDWR)  # its thread reads EOF and ends
            self._conns[conn] = None
            return True

    def _release(self, conn: _Conn) -> None:
        with self._conns_lock:
            self._conns.pop(conn, None)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self.web.current().ssl_context is not None else "http"

    def finish_request(self, request: Any, client_address: Any) -> None:
        record = _Conn(request)
        if not self._admit(record):
            log.info("%d connections busy; refusing %s", self.max_connections, client_address[0])
            return
        try:
            self._serve(record, request, client_address)
        finally:
            self._release(record)  # before the socket is closed: its fd may be reused

    def _serve(self, record: _Conn, request: Any, client_address: Any) -> None:
        config = self.web.current()
        conn = request
        if config.ssl_context is not None:
            request.settimeout(HANDSHAKE_TIMEOUT)
            try:
                conn = config.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS handshake with %s failed: %s", client_address[0], exc)
                return
            record.sock = conn
        conn.settimeout(self.idle_timeout)
        _current.conn = record
        try:
            _Handler(conn, client_address, self)
        finally:
            _current.conn = None
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
