"""The streaming multipart parser: any chunking gives back the exact part bytes."""

from __future__ import annotations

import hashlib
import io

from hypothesis import given, settings, strategies as st
from tests.qdrant_server.http_io import BodyReader, save_multipart_file

BOUNDARY = "b0undary"


def _multipart(payload: bytes, extra_first: bool) -> bytes:
    parts = []
    if extra_first:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="other"\r\n\r\nxx\r\n'.encode()
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="snapshot"; filename="s"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + payload
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def _chunked(body: bytes, size: int) -> bytes:
    out = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(out) + b"0\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(
    # near-misses of the delimiter inside the data, but never the delimiter itself
    # (a client picks a boundary that does not occur in the payload)
    payload=st.binary(max_size=3000)
    .map(lambda b: b + b"\r\n--" + BOUNDARY.encode()[:-1] + b[:1])
    .filter(lambda b: b"\r\n--" + BOUNDARY.encode() not in b),
    read_size=st.integers(min_value=1, max_value=700),
    wire_chunk=st.integers(min_value=1, max_value=900),
    chunked=st.booleans(),
    extra_first=st.booleans(),
)
def test_any_chunking_round_trips(
    payload: bytes, read_size: int, wire_chunk: int, chunked: bool, extra_first: bool
) -> None:
    body = _multipart(payload, extra_first)
    if chunked:
        reader = BodyReader(
            io.BytesIO(_chunked(body, wire_chunk)), {"Transfer-Encoding": "chunked"}
        )
    else:
        reader = BodyReader(io.BytesIO(body), {"Content-Length": str(len(body))})
    out = io.BytesIO()
    saved = save_multipart_file(
        reader, f"multipart/form-data; boundary={BOUNDARY}", "snapshot", out, read_size=read_size
    )
    assert out.getvalue() == payload
    assert saved.size == len(payload)
    assert saved.sha256 == hashlib.sha256(payload).hexdigest()
