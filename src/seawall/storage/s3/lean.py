"""A lean S3 client for the WAL hot path: PUT, HEAD, GET, LIST, DELETE, nothing else.

Why not boto3 (ADR 0011): ``archive_command`` starts one process per 16 MiB
WAL segment, and importing boto3 costs 0.6-1 s, ten times the push's whole
budget. A WAL segment is one object of at most ~16 MiB (compressed and
encrypted), so one ``PutObject`` does; no multipart upload, no transfer
manager. This module needs only the standard library (``socket``, ``ssl``
only for https, ``hmac``, ``hashlib``; HTTP/1.1 is spoken directly, since
``http.client`` imports the ``email`` package) and is imported only for an
``s3://`` repository.

What it does, and what it leaves to the general (boto3) S3 backend:

* AWS Signature Version 4 in the ``Authorization`` header, payload signed
  (``x-amz-content-sha256`` is the body's sha256, which the server checks;
  ``x-amz-checksum-sha256`` carries the same digest for servers that check
  only that one). :func:`sign` is tested against AWS's published examples
  and against botocore's signer.
* Credentials only from the environment: ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` or their ``*_FILE``
  variants (a mounted Kubernetes Secret). Profiles, web identity (IRSA),
  container and instance credentials need botocore's provider chain:
  :func:`config_from_env` raises :class:`NeedsGeneral` and the caller uses
  the general path.
* The endpoint from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (path-style
  addressing then, as S3-compatible servers expect), else AWS's regional
  endpoint (virtual-hosted style); ``S3_ADDRESSING_STYLE`` overrides;
  ``AWS_CA_BUNDLE`` for a private CA; ``S3_SSE`` / ``S3_SSE_KMS_KEY_ID``.
* Retries: connection failures (refused, reset, timed out, a response cut
  short), 5xx and throttling are retried on a fresh connection with
  exponential backoff and full jitter until a deadline; anything else
  (wrong credentials, access denied, a missing bucket) fails at once.
  Error messages never contain a secret (the key id at most, never sent to
  logs either).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Iterable, Mapping, Sequence
    from typing import BinaryIO

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
#: error codes (and HTTP statuses) worth another attempt: the same set as
#: the general backend's retry.RETRYABLE_CODES (a unit test keeps them equal)
RETRYABLE_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "RequestLimitExceeded",
        "BadDigest",
        "XAmzContentSHA256Mismatch",
        "500",
        "502",
        "503",
        "504",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
    }
)
#: variables that mean "credentials come from botocore's provider chain"
GENERAL_ONLY_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class NeedsGeneral(Exception):
    """The lean client cannot serve this configuration; the general (boto3) path must."""


class S3Error(Exception):
    """An S3 request failed for good: ``message`` is one line naming the fix.

    ``kind``: ``credentials`` | ``denied`` | ``no-bucket`` | ``unreachable`` |
    ``server`` | ``config``. Nothing in ``message`` is secret.
    """

    def __init__(self, kind: str, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = code


def _quote(text: str, safe: bytes = b"") -> str:
    """RFC 3986 percent-encoding as SigV4 wants it (every byte but the unreserved)."""
    out = []
    for byte in text.encode():
        if byte in _UNRESERVED or byte in safe:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """``kSigning`` of SigV4 (date ``YYYYMMDD``)."""
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_query(query: Mapping[str, str]) -> str:
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))


def sign(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    amz_date: str,
    service: str = "s3",
) -> str:
    """The ``Authorization`` header value for a request.

    ``path`` is the already encoded request path (what goes on the request
    line); ``headers`` are the headers to sign (names any case, ``host``
    and ``x-amz-date`` among them); ``amz_date`` is ``YYYYMMDDTHHMMSSZ``.
    """
    canon = {k.lower().strip(): " ".join(str(v).split()) for k, v in headers.items()}
    names = sorted(canon)
    canonical_request = "\n".join(
        [
            method,
            path,
            canonical_query(query),
            "".join(f"{n}:{canon[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = signing_key(secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )


class Config:
    """Where and as whom: everything the lean client reads from the environment."""

    __slots__ = (
        "access_key",
        "bucket",
        "ca_bundle",
        "host",
        "port",
        "prefix",
        "region",
        "secret_key",
        "secure",
        "sse",
        "sse_kms_key_id",
        "token",
        "url",
        "virtual",
    )

    def __init__(
        self,
        url: str,
        *,
        access_key: str,
        secret_key: str,
        token: str | None = None,
        region: str = "us-east-1",
        endpoint: str | None = None,
        addressing: str | None = None,
        ca_bundle: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
    ) -> None:
        if not url.startswith("s3://"):
            raise S3Error("config", f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise S3Error("config", f"S3 URL {url!r} names no bucket (expected s3://bucket/prefix)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.region = region
        if endpoint:
            scheme, sep, rest = endpoint.partition("://")
            if not sep or scheme not in ("http", "https"):
                raise S3Error(
                    "config", f"S3 endpoint {endpoint!r} is not an http:// or https:// URL"
                )
            hostport = rest.split("/", 1)[0]
        else:
            scheme, hostport = "https", f"s3.{region}.amazonaws.com"
        self.secure = scheme == "https"
        if hostport.startswith("["):  # [IPv6]:port
            host, _, tail = hostport.partition("]")
            host, port = host + "]", tail.lstrip(":")
        else:
            host, _, port = hostport.partition(":")
        if not host or (port and not port.isdigit()):
            raise S3Error("config", f"S3 endpoint {endpoint!r} has no valid host[:port]")
        self.host = host
        self.port = int(port) if port else (443 if self.secure else 80)
        style = (addressing or ("path" if endpoint else "virtual")).lower()
        if style not in ("path", "virtual"):
            raise S3Error("config", f"S3_ADDRESSING_STYLE must be path or virtual (got {style!r})")
        self.virtual = style == "virtual"
        self.ca_bundle = ca_bundle
        if sse and sse not in ("AES256", "aws:kms"):
            raise S3Error("config", f"S3_SSE must be AES256 or aws:kms (got {sse!r})")
        self.sse = sse or None
        self.sse_kms_key_id = sse_kms_key_id or None

    def key(self, rel: str) -> str:
        """The object key of ``rel`` under the repository's prefix."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def where(self) -> str:
        return f"{self.url} at {'https' if self.secure else 'http'}://{self.host}:{self.port}"


def _env(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError as exc:
        raise S3Error(
            "config",
            f"{name}_FILE: cannot read {path} ({exc.strerror}); point it at a readable file",
        ) from exc


def config_from_env(url: str, env: Mapping[str, str] | None = None) -> Config:
    """The lean client's configuration from the standard AWS variables.

    Raises :class:`NeedsGeneral` when the credentials must come from
    botocore's provider chain (a profile, web identity, container or
    instance credentials, or none set at all), and :class:`S3Error` (kind
    ``config``) for a value that is wrong either way.
    """
    env = os.environ if env is None else env
    for name in GENERAL_ONLY_VARS:
        if env.get(name):
            raise NeedsGeneral(f"{name} is set: credentials come from botocore")
    access = _secret(env, "AWS_ACCESS_KEY_ID")
    secret = _secret(env, "AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise NeedsGeneral("no static credentials in the environment")
    return Config(
        url,
        access_key=access,
        secret_key=secret,
        token=_secret(env, "AWS_SESSION_TOKEN"),
        region=_env(env, "AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
        endpoint=_env(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        addressing=_env(env, "SEAWALL_S3_ADDRESSING_STYLE", "S3_ADDRESSING_STYLE"),
        ca_bundle=_env(env, "AWS_CA_BUNDLE"),
        sse=_env(env, "SEAWALL_S3_SSE", "S3_SSE"),
        sse_kms_key_id=_env(env, "SEAWALL_S3_SSE_KMS_KEY_ID", "S3_SSE_KMS_KEY_ID"),
    )


class Response:
    """Status, headers (lower-case names) and the whole body of one answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def code(self) -> str:
        """The S3 error code of an error answer (``<Code>``), else the status."""
        return _xml_values(self.body, "Code")[:1][0] if b"<Code>" in self.body else str(self.status)


class ObjectEntry:
    """One ``<Contents>`` of a listing."""

    __slots__ = ("key", "last_modified", "size")

    def __init__(self, key: str, size: int, last_modified: str) -> None:
        self.key = key
        self.size = size
        self.last_modified = last_modified


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'")):
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")


def _xml_values(body: bytes, tag: str) -> list[str]:
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


def _read_response(rfile: BinaryIO, method: str) -> tuple[Response, bool]:
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


class _Retryable(Exception):
    """One attempt failed in a way worth another (a fresh connection, later)."""


class Client:
    """One keep-alive connection to the endpoint, re-opened after a failure.

    Every request is retried (on a new connection) on connection failures,
    5xx and throttling, with full-jitter backoff, until ``deadline`` seconds
    after the first attempt of that request; then :class:`S3Error`
    (``unreachable`` or ``server``).
    """

    def __init__(
        self,
        config: Config,
        *,
        deadline: float = 30.0,
        timeout: float = 30.0,
        base: float = 0.1,
        cap: float = 5.0,
    ) -> None:
        self.config = config
        self.deadline = deadline
        self.timeout = timeout
        self.base = base
        self.cap = cap
        self._sock: socket.socket | None = None
        self._rfile: BinaryIO | None = None
        self._ctx: ssl.SSLContext | None = None

    # -- connection
    def _endpoint_host(self) -> str:
        cfg = self.config
        return f"{cfg.bucket}.{cfg.host}" if cfg.virtual else cfg.host

    def _connect(self) -> tuple[socket.socket, BinaryIO]:
        """The open connection (a new one after :meth:`close`).

        A plain socket, not ``http.client``: that module pulls in the
        ``email`` package, a few milliseconds more on every push for
        nothing S3 needs.
        """
        if self._sock is not None and self._rfile is not None:
            return self._sock, self._rfile
        import socket

        cfg = self.config
        host = self._endpoint_host()
        # bytes: a str host name goes through the idna codec (one more import)
        address = (host.strip("[]").encode("ascii"), cfg.port)
        sock = socket.create_connection(address, timeout=self.timeout)  # type: ignore[arg-type]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if cfg.secure:
                import ssl

                if self._ctx is None:
                    self._ctx = (
                        ssl.create_default_context(cafile=cfg.ca_bundle)
                        if cfg.ca_bundle
                        else ssl.create_default_context()
                    )
                sock = self._ctx.wrap_socket(sock, server_hostname=host.strip("[]"))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._rfile = sock.makefile("rb")
        return sock, self._rfile

    def close(self) -> None:
        sock, rfile = self._sock, self._rfile
        self._sock = self._rfile = None
        if rfile is not None:
            rfile.close()
        if sock is not None:
            sock.close()

    def _host_header(self) -> str:
        cfg = self.config
        default = 443 if cfg.secure else 80
        host = self._endpoint_host()
        return host if cfg.port == default else f"{host}:{cfg.port}"

    def _path(self, key: str) -> str:
        cfg = self.config
        encoded = _quote(key, b"/")
        if cfg.virtual:
            return f"/{encoded}"
        return f"/{_quote(cfg.bucket)}/{encoded}" if key else f"/{_quote(cfg.bucket)}"

    # -- one request
    def _attempt(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        body: Sequence[bytes],
        length: int,
        payload_sha256: str,
    ) -> Response:
        cfg = self.config
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = dict(headers)
        signed["host"] = self._host_header()
        signed["x-amz-date"] = amz_date
        signed["x-amz-content-sha256"] = payload_sha256
        if cfg.token:
            signed["x-amz-security-token"] = cfg.token
        auth = sign(
            method,
            path,
            query,
            signed,
            payload_sha256,
            access_key=cfg.access_key,
            secret_key=cfg.secret_key,
            region=cfg.region,
            amz_date=amz_date,
        )
        url = f"{path}?{canonical_query(query)}" if query else path
        lines = [f"{method} {url} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in signed.items()]
        lines.append(f"authorization: {auth}")
        if method in ("PUT", "POST") or length:
            lines.append(f"content-length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            sock, rfile = self._connect()
            if length and length <= 65536:
                sock.sendall(head + b"".join(body))
            else:
                sock.sendall(head)
                for piece in body:
                    sock.sendall(piece)
            answer, keep = _read_response(rfile, method)
            if not keep:
                self.close()
        except (OSError, ValueError) as exc:  # refused, reset, timed out, cut short
            self.close()
            if type(exc).__name__ == "SSLCertVerificationError":  # no retry will change it
                raise S3Error(
                    "unreachable",
                    f"the TLS certificate of {cfg.where()} is not trusted ({exc.args[-1]}): "
                    "set AWS_CA_BUNDLE to the CA file that signed it",
                ) from exc
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if answer.status >= 500 or (answer.status >= 400 and answer.code() in RETRYABLE_CODES):
            self.close()
            raise _Retryable(f"HTTP {answer.status} {answer.code()}")
        return answer

    def request(
        self,
        method: str,
        key: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Sequence[bytes] = (),
        payload_sha256: str = EMPTY_SHA256,
        what: str = "",
    ) -> Response:
        """Send one request (retried as the class says); any final answer is returned.

        4xx answers are returned for the caller to judge (404 and 412 are
        normal answers); :class:`S3Error` only for a request that never got
        a final answer before the deadline.
        """
        path = self._path(key)
        length = sum(len(p) for p in body)
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._attempt(
                    method, path, query or {}, dict(headers or {}), body, length, payload_sha256
                )
            except _Retryable as exc:
                import random  # only when a retry is needed

                pause = random.uniform(0, min(self.cap, self.base * (2**attempt)))
                elapsed = time.monotonic() - start
                if elapsed + pause > self.deadline:
                    server = str(exc).startswith("HTTP ")
                    raise S3Error(
                        "server" if server else "unreachable",
                        f"{'S3 answered ' if server else 'cannot reach S3 for '}"
                        f"{what or key} in {self.config.where()} "
                        f"({exc}) after {elapsed:.0f}s of retries: "
                        + (
                            "the server is failing, retry later"
                            if server
                            else "check the endpoint URL and that the server is up"
                        ),
                    ) from exc
                time.sleep(pause)
                attempt += 1

    def fail(self, answer: Response, what: str) -> S3Error:
        """The one-line error of a 4xx answer nobody expected."""
        code = answer.code()
        where = self.config.where()
        if code in CREDENTIAL_CODES:
            return S3Error(
                "credentials",
                f"S3 rejected the credentials for {where} ({code}): check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (or their _FILE variants) and the clock",
                answer.status,
                code,
            )
        if code == "NoSuchBucket" or (code in ("AccessDenied", "403") and self.bucket_missing()):
            return S3Error(
                "no-bucket",
                f"bucket {self.config.bucket!r} of {where} does not exist: create it or fix the "
                "bucket name in BACKUP_DIR",
                answer.status,
                "NoSuchBucket",
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return S3Error(
                "denied",
                f"S3 denied {what} in {where} (AccessDenied): give this key s3:PutObject, "
                "s3:GetObject and s3:ListBucket on the bucket",
                answer.status,
                code,
            )
        return S3Error(
            "server",
            f"S3 error on {what} in {where}: {code} (HTTP {answer.status})",
            answer.status,
            code,
        )

    def bucket_missing(self) -> bool:
        """One HEAD of the bucket: does it answer 404? (SeaweedFS answers a write
        into a missing bucket with AccessDenied.)"""
        try:
            return self.request("HEAD", "", what="the bucket").status == 404
        except S3Error:
            return False

    # -- operations
    def put(
        self,
        key: str,
        body: Sequence[bytes],
        payload_sha256: str,
        *,
        if_none_match: bool = False,
        what: str = "",
    ) -> int:
        """PutObject; returns 200, or 412 when ``if_none_match`` and the key exists.

        ``payload_sha256`` (hex) is signed and checked by the server, and
        sent again as ``x-amz-checksum-sha256``.
        """
        from binascii import b2a_base64  # base64 would import struct for nothing

        cfg = self.config
        headers = {
            "content-type": "application/octet-stream",
            "x-amz-checksum-sha256": b2a_base64(
                bytes.fromhex(payload_sha256), newline=False
            ).decode(),
        }
        if if_none_match:
            headers["if-none-match"] = "*"
        if cfg.sse:
            headers["x-amz-server-side-encryption"] = cfg.sse
            if cfg.sse == "aws:kms" and cfg.sse_kms_key_id:
                headers["x-amz-server-side-encryption-aws-kms-key-id"] = cfg.sse_kms_key_id
        full = cfg.key(key)
        answer = self.request(
            "PUT",
            full,
            headers=headers,
            body=body,
            payload_sha256=payload_sha256,
            what=what or f"writing {key}",
        )
        if answer.status == 200 or (if_none_match and answer.status == 412):
            return answer.status
        raise self.fail(answer, what or f"writing {key}")

    def head(self, key: str) -> dict[str, str] | None:
        """The object's headers, or None when it does not exist."""
        answer = self.request("HEAD", self.config.key(key), what=f"reading {key}")
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self.fail(answer, f"reading {key}")
        return answer.headers

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        answer = self.request("GET", self.config.key(key), what=f"reading {key}")
        if answer.status == 404 and answer.code() in ("NoSuchKey", "404"):
            return None
        if answer.status != 200:
            raise self.fail(answer, f"reading {key}")
        return answer.body

    def delete(self, key: str) -> None:
        answer = self.request("DELETE", self.config.key(key), what=f"deleting {key}")
        if answer.status not in (200, 204, 404):
            raise self.fail(answer, f"deleting {key}")

    def list(self, prefix: str) -> list[ObjectEntry]:
        """Every object whose key starts with ``prefix`` (relative to the repository)."""
        cfg = self.config
        full = cfg.key(prefix)
        out: list[ObjectEntry] = []
        token = ""
        strip = len(cfg.prefix) + 1 if cfg.prefix else 0
        while True:
            query = {"list-type": "2", "prefix": full}
            if token:
                query["continuation-token"] = token
            answer = self.request("GET", "", query=query, what=f"listing {prefix}")
            if answer.status != 200:
                raise self.fail(answer, f"listing {prefix}")
            text = answer.body
            for block in _xml_values(text, "Contents"):
                raw = block.encode()
                key = _xml_values(raw, "Key")
                size = _xml_values(raw, "Size")
                modified = _xml_values(raw, "LastModified")
                if key:
                    out.append(
                        ObjectEntry(
                            key[0][strip:],
                            int(size[0]) if size and size[0].isdigit() else 0,
                            modified[0] if modified else "",
                        )
                    )
            truncated = _xml_values(text, "IsTruncated")
            tokens = _xml_values(text, "NextContinuationToken")
            if not (truncated and truncated[0] == "true" and tokens):
                return out
            token = tokens[0]


def chunks_sha256(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for piece in chunks:
        digest.update(piece)
    return digest.hexdigest()
