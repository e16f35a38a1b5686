"""HTTP handler: routing, auth, spec validation, fault hooks, streaming I/O.

One ``QdrantHandler`` instance serves one connection (HTTP/1.1 keep-alive) of
a ``ThreadingHTTPServer``; the application state lives on ``server.app``
(``QdrantTestServer``). Endpoint logic is in ``endpoints.py``; this module only
deals with HTTP: it reads bodies (streamed for uploads), checks every request
and every JSON response against the OpenAPI spec, and writes answers in
Qdrant's envelopes: ``{"result", "status": "ok", "time"}``, errors as
``{"status": {"error": ...}, "time"}``, 401/403 as plain text.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .http_io import BodyError, BodyReader
from .spec import SpecViolation
from .storage import StorageError

if TYPE_CHECKING:
    from .server import QdrantTestServer

AUTH_WHITELIST = frozenset({"/healthz", "/readyz", "/livez"})
"""Paths Qdrant answers without an API key (health probes)."""


@dataclass
class Ctx:
    """One request as the endpoints see it."""

    method: str
    raw_path: str
    query: list[tuple[str, str]]
    params: dict[str, str]
    body: bytes | None
    reader: BodyReader
    content_type: str
    started: float = field(default_factory=time.monotonic)
    #: The request headers (case-insensitive ``get``), for checks of how a
    #: client sent its body (Content-Length vs chunked).
    headers: Any = field(default_factory=dict)

    def q(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def q_bool(self, name: str, default: bool) -> bool:
        value = self.q(name)
        if value is None:
            return default
        return value.lower() == "true"

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


Endpoint = Callable[["QdrantTestServer", "QdrantHandler", Ctx], None]
_ROUTES: list[tuple[str, re.Pattern[str], list[str], Endpoint]] = []


def route(method: str, template: str) -> Callable[[Endpoint], Endpoint]:
    """Register an endpoint for a spec path template like ``/collections/{collection_name}``."""
    names = re.findall(r"{(\w+)}", template)
    pattern = re.compile("^" + re.sub(r"{\w+}", "([^/]+)", template) + "$")

    def deco(func: Endpoint) -> Endpoint:
        _ROUTES.append((method, pattern, names, func))
        return func

    return deco


def match(method: str, raw_path: str) -> tuple[Endpoint, dict[str, str]] | None:
    for m, pattern, names, func in _ROUTES:
        if m != method:
            continue
        found = pattern.match(raw_path)
        if found:
            # decode each segment separately: "%2F" stays inside its segment
            return func, {n: unquote(v) for n, v in zip(names, found.groups(), strict=True)}
    return None


class QdrantHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qdrant-test-server"
    #: Qdrant (actix-web) answers with TCP_NODELAY. Without it, the headers and
    #: the body of an answer go out as two small writes on a kept-alive
    #: connection, and Nagle plus the client's delayed ACK add ~40 ms to EVERY
    #: API call: 0.3 s per backup that real Qdrant does not have (measured).
    disable_nagle_algorithm = True
    sys_version = ""

    @property
    def app(self) -> QdrantTestServer:
        return self.server.app  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is kept on ``app.requests`` instead."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    # -- request pipeline -------------------------------------------------------------

    def _handle(self, method: str) -> None:
        app = self.app
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        query = parse_qsl(split.query, keep_blank_values=True)
        content_type = self.headers.get("Content-Type", "")
        reader = BodyReader(self.rfile, self.headers)
        ctx = Ctx(method, raw_path, query, {}, None, reader, content_type, headers=self.headers)
        self._reader = reader
        self._status = 0
        try:
            self._pipeline(app, ctx)
        except StorageError as exc:
            self.send_error_json(ctx, exc.status, exc.message)
        except BodyError as exc:
            self.close_connection = True
            # a client that cut its body short is usually gone already
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_error_json(ctx, 400, f"Bad request: {exc}")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the test server: make it loud
            app.internal_errors.append(traceback.format_exc())
            try:
                self.send_error_json(ctx, 500, f"Service internal error: {exc}")
            except OSError:
                self.close_connection = True
        finally:
            app.record_request(method, raw_path, self._status)

    def _pipeline(self, app: QdrantTestServer, ctx: Ctx) -> None:
        if not self._authorized(app, ctx):
            return
        # 503 / garbage: the server (or a proxy in front) is unhealthy
        if (armed := app.faults.take("unavailable", ctx.raw_path)) is not None:
            self._drain_quietly(ctx)
            self.send_error_json(
                ctx,
                int(armed.value or 503),
                "Service unavailable: the test server is overloaded",
                validate=False,
            )
            return
        if app.faults.take("garbage", ctx.raw_path) is not None:
            self._drain_quietly(ctx)
            self.send_raw(
                200,
                "text/html",
                b"<html><body>502 Bad Gateway (garbage injected by the test)</body></html>",
            )
            return

        found = match(ctx.method, ctx.raw_path)
        binary = ctx.content_type.lower().startswith(("multipart/", "application/octet-stream"))
        if not binary and ctx.reader.has_body:
            ctx.body = ctx.reader.read_all()
        error = app.validator.validate_request(
            ctx.method,
            ctx.raw_path,
            ctx.query,
            {k: v for k, v in self.headers.items()},
            ctx.body if not binary else None,
            ctx.content_type if (binary or ctx.body) else "",
        )
        if error is not None:
            app.spec_violations.append(SpecViolation("request", ctx.method, ctx.raw_path, error))
            if binary:
                self.close_connection = True  # the unread upload stays on the wire
            status = (
                404
                if ("PathNotFound" in error or "OperationNotFound" in error or found is None)
                else (422 if "RequestBody" in error or "MediaType" in error else 400)
            )
            self.send_error_json(
                ctx,
                status,
                f"Bad request: request does not match the Qdrant API spec: {error}",
                validate=False,
            )
            return
        if found is None:
            # In the spec but not implemented here: say so loudly rather than
            # answer a 404 a client could take for "collection not found".
            message = f"the Qdrant test server does not implement {ctx.method} {ctx.raw_path}"
            app.internal_errors.append(message)
            self.send_error_json(ctx, 501, f"Service internal error: {message}", validate=False)
            return
        func, params = found
        ctx.params = params
        func(app, self, ctx)

    def _authorized(self, app: QdrantTestServer, ctx: Ctx) -> bool:
        if app.api_key is None or ctx.raw_path in AUTH_WHITELIST:
            return True
        key = self.headers.get("api-key")
        if key is None:
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                key = auth[7:].strip()
        if key is None:
            self._drain_quietly(ctx)
            self.send_raw(
                401,
                "text/plain; charset=utf-8",
                b"Must provide an API key or an Authorization bearer token",
            )
            return False
        if key != app.api_key:
            self._drain_quietly(ctx)
            self.send_raw(403, "text/plain; charset=utf-8", b"Invalid API key or JWT")
            return False
        return True

    def _drain_quietly(self, ctx: Ctx) -> None:
        if ctx.content_type.lower().startswith("multipart/"):
            self.close_connection = True  # do not read a possibly huge upload
            return
        try:
            ctx.reader.drain()
        except BodyError:
            self.close_connection = True

    # -- responses ---------------------------------------------------------------------

    def send_raw(
        self, status: int, content_type: str, data: bytes, extra: dict[str, str] | None = None
    ) -> None:
        self._status = status
        if not self._reader.done:
            # answering before the body was read (an error, a refused upload):
            # the rest of the body is still on the wire, so the connection dies
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, ctx: Ctx, status: int, obj: Any, validate: bool = True) -> None:
        data = json.dumps(obj).encode()
        if validate:
            error = self.app.validator.validate_response(
                ctx.method, ctx.raw_path, ctx.query, status, "application/json", data
            )
            if error is not None:
                self.app.spec_violations.append(
                    SpecViolation("response", ctx.method, ctx.raw_path, error)
                )
        self.send_raw(status, "application/json", data)

    def send_ok(self, ctx: Ctx, result: Any) -> None:
        self.send_json(ctx, 200, {"result": result, "status": "ok", "time": ctx.elapsed()})

    def send_accepted(self, ctx: Ctx) -> None:
        self.send_json(ctx, 202, {"result": None, "status": "accepted", "time": ctx.elapsed()})

    def send_error_json(self, ctx: Ctx, status: int, message: str, validate: bool = True) -> None:
        self.send_json(ctx, status, {"status": {"error": message}, "time": ctx.elapsed()}, validate)

    def send_plain(self, ctx: Ctx, status: int, text: str) -> None:
        self.send_raw(status, "text/plain; charset=utf-8", text.encode())

    def send_file(self, ctx: Ctx, path: os.PathLike[str] | str, size: int) -> None:
        """Stream a snapshot file with ``os.sendfile``; honours one Range.

        A ``cut_download`` fault sends the headers for the full answer, then
        only N body bytes, then closes the connection, as a dying proxy would.
        """
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            found = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
            if not found or (not found.group(1) and not found.group(2)):
                self.send_raw(
                    416, "text/plain", b"invalid range", {"Content-Range": f"bytes */{size}"}
                )
                return
            if found.group(1):
                start = int(found.group(1))
                end = min(int(found.group(2)), size - 1) if found.group(2) else size - 1
            else:  # suffix range: last N bytes
                start = max(0, size - int(found.group(2)))
            if start >= size or start > end:
                self.send_raw(
                    416,
                    "text/plain",
                    b"range not satisfiable",
                    {"Content-Range": f"bytes */{size}"},
                )
                return
            status = 206
        length = end - start + 1
        media_error = self.app.validator.validate_response(
            ctx.method,
            ctx.raw_path,
            ctx.query,
            200 if status == 206 else status,
            "application/octet-stream",
            None,
        )
        if media_error is not None:
            self.app.spec_violations.append(
                SpecViolation("response", ctx.method, ctx.raw_path, media_error)
            )
        cut = self.app.faults.take("cut_download")
        limit = length if cut is None else min(length, int(cut.value))
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self.wfile.flush()
        with open(path, "rb") as fh:
            sent = self.connection.sendfile(fh, offset=start, count=limit)
        if cut is not None or sent < length:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
