"""The lean S3 client's connection: TCP and TLS from ``_socket`` and ``_ssl``, not ``socket``/``ssl``.

Why: ``wal-push`` to S3 is one process per 16 MiB segment, and the
standard-library wrappers cost more than the work they wrap there.
Measured in fresh processes on the 2-core bench machine (CPU time, under
load): ``import socket`` ~11 ms (``selectors``, ``enum``, ``collections``),
``import ssl`` ~10 ms more (``re``, ``base64``), and a ``str`` server name
goes through the ``idna`` codec (~2 ms, ``encodings.idna`` + ``stringprep``);
the C modules underneath cost ~3 ms together, the TLS context ~1 ms. Those
imports run in the thread that opens the connection while the main thread
hashes and zstd compresses, and being pure Python they hold the GIL that
the compressor needs between chunks: they lengthened the push itself, not
only its CPU bill (docs/adr/0013-wal-push-to-object-storage.md).

What is kept from ``ssl.create_default_context`` (checked by
tests/integration/storage/test_s3_lean_client.py against a real TLS
server): a ``PROTOCOL_TLS_CLIENT`` context, whose C defaults are the ones
``ssl.SSLContext`` gets (TLS >= 1.2, the default cipher list,
``CERT_REQUIRED``, ``check_hostname``); ``AWS_CA_BUNDLE`` loaded with
``load_verify_locations``, else the system's default paths (what
``load_default_certs`` does on Linux; ``SSL_CERT_FILE``/``SSL_CERT_DIR``
apply); ``SSLKEYLOGFILE``. The host name is checked by OpenSSL itself
(``_ssl`` hands it to ``X509_VERIFY_PARAM_set1_host``/``set1_ip`` since
Python 3.7), and SNI is sent for a name, as ``ssl.py`` does: ``ssl.py``'s
``SSLSocket`` adds no check of its own. A ragged EOF (the peer closing
without ``close_notify``) reads as the end of the stream, as with
``suppress_ragged_eofs=True`` (the default): a body cut short is still
caught by its Content-Length.

If this interpreter's ``_ssl`` lacks what is used here (``_SSLContext``,
``_wrap_socket``: private names that could move in another CPython), the
``ssl`` module does the TLS instead (:func:`tls_lean_available`; the test
forces that path too).
"""

from __future__ import annotations

import io
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

#: tests set it to exercise the ``ssl`` module's fallback
_FORCE_SSL_MODULE = False


def tls_lean_available() -> bool:
    """Whether ``_ssl`` offers what :func:`connect` uses without the ``ssl`` module."""
    if _FORCE_SSL_MODULE:
        return False
    try:
        import _ssl
    except ImportError:
        return False
    return hasattr(_ssl, "_SSLContext") and hasattr(_ssl._SSLContext, "_wrap_socket")


class _Raw(io.RawIOBase):
    """The connection's receiving side as a raw stream, for ``io.BufferedReader``."""

    def __init__(self, recv_into: Callable[[memoryview], int]) -> None:
        super().__init__()
        self._recv_into = recv_into

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._recv_into(memoryview(buffer).cast("B"))


class Connection:
    """One connected (and, for https, TLS-established) socket to the endpoint."""

    def __init__(self, sock: Any, tls: Any | None) -> None:
        # ``_socket.socket`` and ``_ssl._SSLSocket`` (or the fallback's
        # ``ssl.SSLSocket`` alone, tls None); sock stays referenced here:
        # _ssl's object holds it only weakly
        self._sock = sock
        self._tls = tls
        self.rfile: BinaryIO = io.BufferedReader(_Raw(self._recv_into), 65536)

    def _recv_into(self, view: memoryview) -> int:
        if self._tls is None:
            return int(self._sock.recv_into(view))
        try:
            return int(self._tls.read(len(view), view))
        except OSError as exc:  # _ssl.SSLZeroReturnError / SSLEOFError: the peer closed
            if type(exc).__name__ in ("SSLZeroReturnError", "SSLEOFError"):
                return 0
            raise

    def sendall(self, data: bytes | memoryview) -> None:
        if self._tls is None:
            self._sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            view = view[self._tls.write(view) :]

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            self._tls = None
            self._sock.close()


_socket_class: Any = None


def _socket_type() -> Any:
    """``_socket.socket`` subclassed: ``_ssl`` keeps a weak reference to the socket
    it wraps, and the C type has no ``__weakref__`` slot (``socket.socket`` is such a
    subclass too)."""
    global _socket_class
    if _socket_class is None:
        import _socket

        class Socket(_socket.socket):
            __slots__ = ("__weakref__",)

        _socket_class = Socket
    return _socket_class


def _tcp(host: str, port: int, timeout: float) -> Any:
    """A connected socket (``socket.create_connection`` without ``socket``)."""
    import _socket

    socket_type = _socket_type()
    # bytes: a str host name goes through the idna codec (one more import)
    infos = _socket.getaddrinfo(host.encode("ascii"), port, 0, _socket.SOCK_STREAM)
    error: OSError | None = None
    for family, kind, proto, _name, address in infos:
        sock = socket_type(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            if family in (_socket.AF_INET, _socket.AF_INET6):
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or OSError(f"getaddrinfo returned nothing for {host}")


class TLSContext:
    """The client TLS context, made once per process and reused by reconnections."""

    def __init__(self, ca_bundle: str | None) -> None:
        import _ssl

        ctx = _ssl._SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        # PROTOCOL_TLS_CLIENT's C defaults already; said again so no version can loosen them
        ctx.verify_mode = _ssl.CERT_REQUIRED
        ctx.check_hostname = True
        if ca_bundle:
            ctx.load_verify_locations(ca_bundle)
        else:
            ctx.set_default_verify_paths()
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog:
            ctx.keylog_filename = keylog
        self.ctx: Any = ctx

    def wrap(self, sock: Any, host: str) -> Any:
        """The TLS session over ``sock``, handshake done, certificate and host name verified."""
        tls = self.ctx._wrap_socket(sock, False, host)  # ASCII str, as ssl.py hands it over
        tls.do_handshake()
        return tls


_contexts: dict[str | None, TLSContext] = {}


def connect(
    host: str, port: int, *, timeout: float, secure: bool, ca_bundle: str | None = None
) -> Connection:
    """A connection to ``host:port`` (``host`` without IPv6 brackets), TLS when ``secure``.

    The TLS context is made once per process and ``ca_bundle``. OSError
    (``_ssl.SSLCertVerificationError`` among them) when it cannot be opened.
    """
    if secure and not tls_lean_available():
        return _connect_ssl_module(host, port, timeout, ca_bundle)
    sock = _tcp(host, port, timeout)
    if not secure:
        return Connection(sock, None)
    try:
        ctx = _contexts.get(ca_bundle)
        if ctx is None:
            ctx = _contexts[ca_bundle] = TLSContext(ca_bundle)
        return Connection(sock, ctx.wrap(sock, host))
    except BaseException:
        sock.close()
        raise


def _connect_ssl_module(host: str, port: int, timeout: float, ca_bundle: str | None) -> Connection:
    """The fallback: the same connection through ``socket`` and ``ssl``."""
    import socket
    import ssl

    ctx = (
        ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    )
    raw = socket.create_connection((host.encode("ascii"), port), timeout=timeout)  # type: ignore[arg-type]
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = ctx.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    return Connection(wrapped, None)  # an ssl.SSLSocket reads and writes like a socket
