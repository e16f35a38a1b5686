"""Streaming request bodies: Content-Length or chunked, and multipart to disk.

Why hand-rolled: ``http.server`` gives a raw socket file, and the stdlib's
multipart helpers (``cgi``) buffer whole parts or are deprecated. A restore
upload can be gigabytes, so the part is written to disk as it arrives with a
bounded buffer, hashing on the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

CHUNK = 1024 * 1024


class BodyError(Exception):
    """The request body is malformed (answered with 400)."""


class BodyReader:
    """Reads a request body exactly once, whatever its transfer encoding."""

    def __init__(self, rfile: Any, headers: Mapping[str, str] | Any) -> None:
        self._rfile = rfile
        self._chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = headers.get("Content-Length")
        self._remaining = (
            int(length) if length and not self._chunked else (0 if not self._chunked else -1)
        )
        self._chunk_left = 0
        self._done = not self._chunked and self._remaining == 0

    @property
    def done(self) -> bool:
        """True once the whole body has been read (the connection can be reused)."""
        return self._done

    @property
    def has_body(self) -> bool:
        return self._chunked or self._remaining > 0

    def read(self, n: int = CHUNK) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the body."""
        if self._done:
            return b""
        if not self._chunked:
            data: bytes = self._rfile.read(min(n, self._remaining))
            if not data:
                raise BodyError("connection closed before the end of the body")
            self._remaining -= len(data)
            if self._remaining == 0:
                self._done = True
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(1024)
            if not line:
                raise BodyError("connection closed inside chunked body")
            try:
                self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise BodyError(f"bad chunk size line {line!r}") from exc
            if self._chunk_left == 0:
                # trailers until the empty line
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        chunk_data: bytes = self._rfile.read(min(n, self._chunk_left))
        if not chunk_data:
            raise BodyError("connection closed inside a chunk")
        self._chunk_left -= len(chunk_data)
        if self._chunk_left == 0:
            self._rfile.readline(16)  # CRLF after the chunk
        return chunk_data

    def read_all(self, limit: int = 256 * 1024 * 1024) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            data = self.read()
            if not data:
                return b"".join(parts)
            total += len(data)
            if total > limit:
                raise BodyError("body too large")
            parts.append(data)

    def drain(self) -> None:
        while self.read():
            pass


@dataclass
class SavedPart:
    field_name: str
    filename: str | None
    size: int
    sha256: str


def _boundary(content_type: str) -> bytes:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"').encode()
    raise BodyError("multipart body without boundary")


def _part_headers(raw: bytes) -> tuple[str, str | None]:
    name = ""
    filename: str | None = None
    for line in raw.split(b"\r\n"):
        key, _, value = line.decode("utf-8", "replace").partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        for item in value.split(";")[1:]:
            k, _, v = item.strip().partition("=")
            if k == "name":
                name = v.strip('"')
            elif k == "filename":
                filename = v.strip('"')
    return name, filename


def save_multipart_file(
    body: BodyReader, content_type: str, field: str, dest: IO[bytes], read_size: int = CHUNK
) -> SavedPart:
    """Stream the multipart part named ``field`` into ``dest``; skip the others.

    Memory: one read chunk plus the delimiter length.
    """
    boundary = _boundary(content_type)
    first = b"--" + boundary
    delim = b"\r\n--" + boundary
    buf = bytearray()
    eof = False

    def fill() -> bool:
        nonlocal eof
        if eof:
            return False
        data = body.read(read_size)
        if not data:
            eof = True
            return False
        buf.extend(data)
        return True

    # preamble up to the first boundary line
    while (idx := buf.find(first)) < 0:
        if not fill():
            raise BodyError("multipart body without opening boundary")
    del buf[: idx + len(first)]
    saved: SavedPart | None = None
    while True:
        while len(buf) < 2 and fill():
            pass
        if buf[:2] == b"--":
            break  # closing boundary
        while (hend := buf.find(b"\r\n\r\n")) < 0:
            if not fill():
                raise BodyError("truncated multipart part headers")
        name, filename = _part_headers(bytes(buf[2:hend]))
        del buf[: hend + 4]
        wanted = name == field and saved is None
        digest = hashlib.sha256()
        size = 0
        while True:
            idx = buf.find(delim)
            if idx >= 0:
                chunk = bytes(buf[:idx])
                del buf[: idx + len(delim)]
            else:
                keep = len(delim)
                chunk = bytes(buf[:-keep]) if len(buf) > keep else b""
                del buf[: len(chunk)]
            if chunk and wanted:
                dest.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            if idx >= 0:
                break
            if not fill():
                raise BodyError("truncated multipart body (no closing boundary)")
        if wanted:
            saved = SavedPart(name, filename, size, digest.hexdigest())
    body.drain()
    if saved is None:
        raise BodyError(f"multipart body has no part named {field!r}")
    return saved
