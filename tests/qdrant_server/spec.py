"""Validation of traffic against Qdrant's published OpenAPI document.

Why: the test server is only useful if it speaks the *real* API. Every request
it receives and every JSON response it sends is checked against the v1.19.0
spec, so a client that drifts from the API (or a server bug that would hide
such drift) shows up as a recorded violation instead of a green test.

Binary bodies (snapshot uploads and downloads, up to gigabytes) are checked for
their declared media type only: validating them byte by byte is pointless and
would defeat the streaming the server exists to exercise.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict


def spec_path() -> Path:
    """Where the Qdrant v1.19.0 OpenAPI document is.

    ``QDRANT_OPENAPI_SPEC`` if set, else the copy vendored next to this
    module (``OPENAPI_SOURCE.txt`` says where it came from). Nothing outside
    the repository is read: a fresh clone runs the suite on its own.
    """
    env = os.environ.get("QDRANT_OPENAPI_SPEC")
    if env:
        return Path(env)
    return Path(__file__).resolve().with_name("openapi.json")


@dataclass(frozen=True)
class SpecViolation:
    """One request or response that does not match the spec."""

    kind: str  # "request" or "response"
    method: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.method} {self.path}: {self.message}"


class _Request:
    """Adapter giving openapi-core the request protocol it expects."""

    def __init__(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes | None,
        content_type: str,
    ) -> None:
        self.host_url = "http://localhost:6333"
        self.path = path
        self.method = method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query)), header=Headers(dict(headers))
        )
        self.body = body
        self.content_type = content_type


class _Response:
    def __init__(self, status: int, data: bytes | None, content_type: str) -> None:
        self.status_code = status
        self.data = data
        self.content_type = content_type
        self.headers = Headers({"Content-Type": content_type})


def _error_text(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    while cause is not None and len(parts) < 4:
        parts.append(str(cause))
        cause = cause.__cause__
    details = getattr(exc, "schema_errors", None)
    if details:
        parts.extend(str(getattr(d, "message", d)) for d in list(details)[:3])
    return " | ".join(parts)[:2000]


class SpecValidator:
    """Validates requests/responses; thread-safe, one instance per spec file."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or spec_path()
        self._api = OpenAPI.from_file_path(str(path))
        self._raw: dict[str, Any] = json.loads(path.read_text())
        # openapi-core keeps internal caches; serialize use to stay on the safe side.
        self._lock = threading.Lock()

    def validate_request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes | None,
        content_type: str,
    ) -> str | None:
        """Return an error message, or None when the request matches the spec.

        ``body`` is None for binary bodies: their media type is then checked
        against the operation's declared request content instead.
        """
        if body is None and content_type:
            media_error = self._check_request_media(method, path, content_type)
            if media_error:
                return media_error
            content_type = ""
        req = _Request(method, path, query, headers, body, content_type)
        try:
            with self._lock:
                self._api.validate_request(req)
        except Exception as exc:  # openapi-core raises a family of errors
            return _error_text(exc)
        return None

    def validate_response(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        status: int,
        content_type: str,
        data: bytes | None,
    ) -> str | None:
        """Return an error message, or None when the response matches the spec.

        ``data`` None means a streamed binary body: only status and media type
        are checked.
        """
        if data is None:
            return self._check_response_media(method, path, status, content_type)
        req = _Request(method, path, query, {}, None, "")
        try:
            with self._lock:
                self._api.validate_response(req, _Response(status, data, content_type))
        except Exception as exc:
            return _error_text(exc)
        return None

    # -- media-type-only checks for binary bodies ---------------------------------

    def _operation(self, method: str, path: str) -> dict[str, Any] | None:
        segments = path.split("?", 1)[0].strip("/").split("/")
        for template, item in self._raw["paths"].items():
            tsegs = template.strip("/").split("/")
            if len(tsegs) != len(segments):
                continue
            if all(t.startswith("{") or t == s for t, s in zip(tsegs, segments, strict=True)):
                op = item.get(method.lower())
                if op is not None:
                    return dict(op)
        return None

    def _check_request_media(self, method: str, path: str, content_type: str) -> str | None:
        op = self._operation(method, path)
        if op is None:
            return f"no operation {method.upper()} {path} in the spec"
        declared = op.get("requestBody", {}).get("content", {})
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in declared:
            return f"request content type {media!r} not declared (spec: {sorted(declared)})"
        return None

    def _check_response_media(
        self, method: str, path: str, status: int, content_type: str
    ) -> str | None:
        op = self._operation(method, path)
        if op is None:
            return f"no operation {method.upper()} {path} in the spec"
        responses = op.get("responses", {})
        resp = (
            responses.get(str(status))
            or responses.get(f"{str(status)[0]}XX")
            or responses.get("default")
        )
        if resp is None:
            return f"status {status} not declared for {method.upper()} {path}"
        declared = resp.get("content", {})
        media = content_type.split(";", 1)[0].strip().lower()
        if declared and media not in declared:
            return f"response content type {media!r} not declared (spec: {sorted(declared)})"
        return None


@functools.lru_cache(maxsize=1)
def default_validator() -> SpecValidator:
    """Loading the spec costs ~0.4 s: share one validator between servers."""
    return SpecValidator()
