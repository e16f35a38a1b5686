"""A small httpx client for Qdrant's REST API.

Why not qdrant-client: it has no streaming download or upload, and a multi-GB
snapshot must never sit in memory. This client is deliberately thin: it knows
how to reach the server (base URL, ``api-key`` header, CA bundle, timeouts),
how to build URL paths from untrusted names, and how to turn every way a
server can fail into one of seawall's errors with a one-line fix:

- connection refused / DNS / TLS failure -> :class:`SourceUnavailableError`
- 401/403 (Qdrant answers these in *plain text*) -> "API key rejected"
- 503 -> unavailable; 404 -> :class:`NotFoundError`
- the error envelope ``{"status": {"error": "..."}}`` -> its message
- anything that is not Qdrant's JSON (a proxy's HTML page) -> a clear error

The API key lives only in the client's default headers; it is never logged,
never put in an error message and never written into a manifest.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from seawall.errors import ConfigError, NotFoundError, SeawallError, SourceUnavailableError
from seawall.log import get_logger, register_secret

log = get_logger("qdrant")

#: Bytes per socket read of httpx's HTTP/1.1 connections. httpcore reads
#: 64 KiB at a time and h11 copies every piece through its receive buffer:
#: downloading a snapshot cost ~1 s of CPU (GIL held) per 600 MB, more than
#: curl's whole run. 256 KiB reads (and ``iter_raw()`` without re-chunking,
#: see snapshots.py) bring it to curl's speed (measured: 0.9 s -> 0.38 s for
#: 578 MB over loopback). Larger reads only return what the socket has.
READ_SIZE = 256 * 1024


def _tune_httpcore() -> None:
    """Raise httpcore's per-read size (a class attribute; process-wide).

    Guarded: if a future httpcore drops the attribute, nothing breaks, the
    download is only slower.
    """
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # pragma: no cover - httpcore internals moved
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", READ_SIZE) < READ_SIZE:
        HTTP11Connection.READ_NUM_BYTES = READ_SIZE


_tune_httpcore()

#: Timeout of ordinary API calls (list, info, delete). Snapshot creation and
#: uploads use ``QDRANT_TIMEOUT`` (long) instead.
DEFAULT_CALL_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0


class QdrantError(SeawallError):
    """Qdrant answered an error."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class QdrantTimeoutError(SourceUnavailableError):
    """Qdrant did not answer in time (it may still be working on the request)."""


def url_path(*parts: str | int) -> str:
    """``/a/b/c`` with every part percent-encoded as ONE path segment.

    httpx does not encode ``/`` in a path we format ourselves, so a
    collection called ``a/../../x`` would otherwise address another
    endpoint. ``quote(safe="")`` encodes ``/``, ``%``, ``?``, ``#`` and NUL;
    a name made only of dots (``.``, ``..``) is encoded as ``%2E`` too,
    because httpx (like every URL library) removes dot segments.
    """
    return "/" + "/".join(_segment(str(p)) for p in parts)


def _segment(part: str) -> str:
    quoted = quote(part, safe="")
    if quoted and quoted.strip(".") == "":
        return quoted.replace(".", "%2E")
    return quoted


def redact_url(url: str) -> str:
    """A URL for humans and manifests: no userinfo, no query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


def error_message(response: httpx.Response) -> str:
    """The server's error text: the envelope's ``status.error``, else the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip().splitlines()[0] if response.text.strip() else ""
        return text[:200] or response.reason_phrase
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and isinstance(status.get("error"), str):
            return str(status["error"])[:300]
    return response.reason_phrase


class QdrantClient:
    """One Qdrant server (or cluster peer) reached over HTTP(S)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        ca_bundle: Path | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.display_url = redact_url(self.base_url)
        self.long_timeout = timeout
        headers = {"user-agent": "seawall", "accept-encoding": "identity"}
        if api_key:
            register_secret(api_key)
            headers["api-key"] = api_key
        verify: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            try:
                verify = ssl.create_default_context(cafile=str(ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"QDRANT_CA_BUNDLE {ca_bundle}: cannot load it as PEM certificates "
                    f"({getattr(exc, 'strerror', None) or exc}); point it at the CA file"
                ) from None
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            verify=verify,
            timeout=httpx.Timeout(DEFAULT_CALL_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
        )
        self._api_key = api_key
        self._ca_bundle = ca_bundle

    @classmethod
    def from_settings(cls, settings: Any, url: str | None = None) -> QdrantClient:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return cls(
            url or settings.qdrant_base_url,
            api_key=key,
            ca_bundle=settings.qdrant_ca_bundle,
            timeout=settings.qdrant_timeout,
        )

    def for_url(self, url: str) -> QdrantClient:
        """A client for another peer of the same cluster (same key and CA)."""
        return QdrantClient(
            url, api_key=self._api_key, ca_bundle=self._ca_bundle, timeout=self.long_timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QdrantClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------

    def _transport_error(self, exc: httpx.TransportError, what: str) -> SeawallError:
        if isinstance(exc, httpx.TimeoutException):
            return QdrantTimeoutError(
                f"Qdrant at {self.display_url} did not answer {what} in time; "
                "raise QDRANT_TIMEOUT or check the server's load"
            )
        reason = type(exc).__name__
        detail = str(exc).splitlines()[0][:120] if str(exc) else reason
        return SourceUnavailableError(
            f"cannot reach Qdrant at {self.display_url} ({detail}); check QDRANT_URL "
            "(or QDRANT_HOST/QDRANT_PORT/QDRANT_HTTPS, QDRANT_CA_BUNDLE) and that Qdrant is running"
        )

    def check_status(self, response: httpx.Response, what: str) -> None:
        """Raise the seawall error that matches a non-2xx answer."""
        code = response.status_code
        if code < 300:
            return
        if code in (401, 403):
            raise SourceUnavailableError(
                f"Qdrant at {self.display_url} rejected the API key (HTTP {code}) on {what}; "
                "set QDRANT_API_KEY (or QDRANT_API_KEY_FILE) to the server's key"
            )
        message = error_message(response)
        if code == 404:
            raise NotFoundError(f"Qdrant: {what}: {message}")
        if code in (502, 503, 504):
            raise SourceUnavailableError(
                f"Qdrant at {self.display_url} is unavailable (HTTP {code}: {message}) on {what}; "
                "retry when the server is ready"
            )
        if code == 507:
            raise QdrantError(
                f"Qdrant ran out of disk space on {what} (HTTP 507: {message}); free space on "
                "the Qdrant volume (old snapshots in its snapshots directory?) or grow it",
                code,
            )
        raise QdrantError(f"Qdrant answered HTTP {code} on {what}: {message}", code)

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        timeout: float | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Call the API and return the ``result`` of its JSON envelope."""
        try:
            response = self._http.request(
                method,
                path,
                params=params,
                json=json_body,
                timeout=(
                    httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
                    if timeout
                    else httpx.USE_CLIENT_DEFAULT
                ),
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None
        self.check_status(response, what)
        if not expect_json:
            return response.text
        return self.parse_result(response, what)

    def parse_result(self, response: httpx.Response, what: str) -> Any:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            ctype = response.headers.get("content-type", "?")
            raise SourceUnavailableError(
                f"{self.display_url} answered {what} with something that is not the Qdrant API "
                f"(HTTP {response.status_code}, {ctype}); check QDRANT_URL points at Qdrant's "
                "REST port (6333), not a proxy or another service"
            ) from None
        if not isinstance(body, dict) or (
            "result" not in body and body.get("status") != "accepted"
        ):
            raise SourceUnavailableError(
                f"{self.display_url} answered {what} with JSON that is not a Qdrant response; "
                "check QDRANT_URL"
            )
        return body.get("result")

    @contextmanager
    def stream(
        self, method: str, path: str, *, what: str, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed response (status already checked)."""
        try:
            with self._http.stream(
                method,
                path,
                headers=headers,
                timeout=httpx.Timeout(self.long_timeout, connect=CONNECT_TIMEOUT),
            ) as response:
                if response.status_code >= 300:
                    response.read()
                    self.check_status(response, what)
                yield response
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None

    def post_stream(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any],
        files: Mapping[str, Any] | None = None,
        content: Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """POST a body that httpx streams: multipart ``files`` from an open
        file, or ``content`` from an iterator (with the caller's headers; an
        explicit Content-Length makes httpx send it as is, not chunked)."""
        try:
            response = self._http.post(
                path,
                params=params,
                files=files,
                content=content,
                headers=headers,
                timeout=httpx.Timeout(self.long_timeout, connect=CONNECT_TIMEOUT),
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None
        self.check_status(response, what)
        return self.parse_result(response, what)

    # -- service -------------------------------------------------------------------------

    def ready(self) -> None:
        """Health check (``/readyz``): fail early with a clear message."""
        what = "the health check (/readyz)"
        try:
            response = self._http.get("/readyz")
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None
        if response.status_code == 404:
            # Qdrant before 1.5 has no /readyz; fall back to the root below.
            return
        if response.status_code >= 300:
            self.check_status(response, what)

    def version(self) -> str:
        """Server version from ``GET /`` (also proves the API key is accepted)."""
        what = "GET /"
        try:
            response = self._http.get("/")
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what) from None
        self.check_status(response, what)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("version"), str):
            raise SourceUnavailableError(
                f"{self.display_url} does not look like Qdrant (GET / has no version); "
                "check QDRANT_URL points at Qdrant's REST port"
            )
        return str(body["version"])

    def collection_names(self) -> list[str]:
        result = self.request("GET", "/collections", what="listing collections")
        try:
            return [str(c["name"]) for c in result["collections"]]
        except (KeyError, TypeError):
            raise SourceUnavailableError(
                f"{self.display_url}: unexpected answer to GET /collections; check QDRANT_URL"
            ) from None

    def collection_info(self, name: str) -> dict[str, Any]:
        result = self.request(
            "GET", url_path("collections", name), what=f"collection {name!r} info"
        )
        if not isinstance(result, dict):
            raise SourceUnavailableError(f"{self.display_url}: unexpected collection info")
        return result

    def count(self, name: str) -> int:
        result = self.request(
            "POST",
            url_path("collections", name, "points", "count"),
            what=f"counting points of {name!r}",
            json_body={"exact": True},
        )
        return int(result["count"])

    def sample_points(self, name: str, limit: int = 3) -> list[dict[str, Any]]:
        """A few points with their vectors (recorded for post-restore searches)."""
        result = self.request(
            "POST",
            url_path("collections", name, "points", "scroll"),
            what=f"sampling points of {name!r}",
            json_body={"limit": limit, "with_vector": True, "with_payload": False},
        )
        points = result.get("points", []) if isinstance(result, dict) else []
        return [{"id": p["id"], "vector": p.get("vector")} for p in points if "id" in p]

    def query(self, name: str, vector: Any, using: str | None, limit: int = 3) -> list[Any]:
        body: dict[str, Any] = {"query": vector, "limit": limit, "with_payload": False}
        if using:
            body["using"] = using
        result = self.request(
            "POST",
            url_path("collections", name, "points", "query"),
            what=f"searching {name!r}",
            json_body=body,
        )
        points = result.get("points", []) if isinstance(result, dict) else []
        return [p.get("id") for p in points]

    def cluster_info(self) -> dict[str, Any]:
        result = self.request("GET", "/cluster", what="cluster status")
        return result if isinstance(result, dict) else {}

    def collection_cluster(self, name: str) -> dict[str, Any]:
        result = self.request(
            "GET", url_path("collections", name, "cluster"), what=f"cluster info of {name!r}"
        )
        return result if isinstance(result, dict) else {}
