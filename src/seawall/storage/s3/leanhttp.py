"""HTTP/1.1 answers for the lean S3 client, read straight off the socket.

Not ``http.client``: that module imports the ``email`` package, a few
milliseconds on every ``wal-push`` for nothing S3 needs. S3's XML answers
are flat enough to read with :func:`xml_values` (no XML parser imported).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO


class Response:
    """Status, headers (lower-case names) and the whole body of one answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def code(self) -> str:
        """The S3 error code of an error answer (``<Code>``), else the status."""
        return xml_values(self.body, "Code")[:1][0] if b"<Code>" in self.body else str(self.status)


class ObjectEntry:
    """One ``<Contents>`` of a listing."""

    __slots__ = ("key", "last_modified", "size")

    def __init__(self, key: str, size: int, last_modified: str) -> None:
        self.key = key
        self.size = size
        self.last_modified = last_modified


_ENTITIES = {"lt": "<", "gt": ">", "quot": '"', "apos": "'", "amp": "&"}


def _entity(name: str) -> str | None:
    """The character of ``&name;``: the five named ones and numeric references."""
    if name.startswith("#"):
        digits, base = (name[2:], 16) if name[1:2] in ("x", "X") else (name[1:], 10)
        try:
            return chr(int(digits, base)) if digits else None
        except (ValueError, OverflowError):
            return None
    return _ENTITIES.get(name)


def _unescape(text: str) -> str:
    """XML text to characters, numeric references included.

    Why numeric ones: SeaweedFS (Go's encoding/xml) writes ``'`` as ``&#39;``
    and ``"`` as ``&#34;``. Left escaped, a key under a prefix such as
    ``o'brien`` came back four characters too long, so the lean wal-fetch
    found no segment and told PostgreSQL "not archived": recovery ended early.
    """
    if "&" not in text:
        return text
    out: list[str] = []
    at = 0
    while (amp := text.find("&", at)) >= 0:
        end = text.find(";", amp)
        char = _entity(text[amp + 1 : end]) if end > amp else None
        out.append(text[at:amp])
        if char is None:  # not a reference: kept as it is
            out.append("&")
            at = amp + 1
        else:
            out.append(char)
            at = end + 1
    out.append(text[at:])
    return "".join(out)


def xml_values(body: bytes, tag: str) -> list[str]:
    """Text of every ``<tag>…</tag>`` (S3's answers are flat enough for this)."""
    text = body.decode("utf-8", "replace")
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    out = []
    at = text.find(open_tag)
    while at >= 0:
        end = text.find(close_tag, at)
        if end < 0:
            break
        out.append(_unescape(text[at + len(open_tag) : end]))
        at = text.find(open_tag, end)
    return out


def read_response(rfile: BinaryIO, method: str) -> tuple[Response, bool]:
    """One HTTP/1.1 answer: (response, whether the connection may be reused).

    ValueError for anything that is not a well-formed answer (the caller
    retries on a new connection, as for a reset).
    """
    while True:
        status_line = rfile.readline(65537)
        if not status_line:
            raise ValueError("the server closed the connection without an answer")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:40]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            line = rfile.readline(65537)
            if not line:
                raise ValueError("the answer's headers were cut short")
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if status != 100:
            break
    keep = parts[0] != b"HTTP/1.0" and headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        pieces = []
        while True:
            size_line = rfile.readline(65537)
            size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            piece = rfile.read(size)
            if len(piece) != size or rfile.read(2) != b"\r\n":
                raise ValueError("a chunked answer was cut short")
            pieces.append(piece)
        body = b"".join(pieces)
    elif "content-length" in headers:
        want = int(headers["content-length"])
        body = rfile.read(want) if want else b""
        if len(body) != want:
            raise ValueError(f"the answer was cut short ({len(body)} of {want} bytes)")
    else:
        body = rfile.read()
        keep = False
    return Response(status, headers, body), keep
