"""A lean S3 client for the WAL hot path: PUT, HEAD, GET, LIST, DELETE, nothing else.

Why not boto3 (ADR 0011): ``archive_command`` starts one process per 16 MiB
WAL segment, and importing boto3 costs 0.6-1 s, ten times the push's whole
budget. A WAL segment is one object of at most ~16 MiB (compressed and
encrypted), so one ``PutObject`` does; no multipart upload, no transfer
manager. This module needs only the standard library (``_socket``, ``_ssl``
only for https, ``hmac``, ``hashlib``; HTTP/1.1 is spoken directly, since
``http.client`` imports the ``email`` package, and :mod:`.leannet` skips
the ``socket``/``ssl`` wrappers) and is imported only for an ``s3://``
repository.

What it does, and what it leaves to the general (boto3) S3 backend:

The pieces: :mod:`~seawall.storage.s3.sigv4` (the signer),
:mod:`~seawall.storage.s3.leanconf` (configuration from the environment,
errors), :mod:`~seawall.storage.s3.leannet` (the TCP/TLS connection),
:mod:`~seawall.storage.s3.leanhttp` (HTTP/1.1 answers off the socket), and
:class:`Client` here (retries, operations).

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

import time

from seawall.storage.s3.codes import CREDENTIAL_CODES, RETRYABLE_CODES
from seawall.storage.s3.leanconf import Config, S3Error
from seawall.storage.s3.leanhttp import ObjectEntry, Response, read_response, xml_values
from seawall.storage.s3.sigv4 import EMPTY_SHA256, canonical_query, quote, sign

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from seawall.storage.s3.leannet import Connection

#: AWS answers a conditional write (If-None-Match) that overlapped another
#: write of the key with 409 and this code, and asks the client to retry
CONDITIONAL_CONFLICT = "ConditionalRequestConflict"
#: variables that mean "credentials come from botocore's provider chain"


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
        self._conn: Connection | None = None

    # -- connection
    def _endpoint_host(self) -> str:
        cfg = self.config
        return f"{cfg.bucket}.{cfg.host}" if cfg.virtual else cfg.host

    def _connect(self) -> Connection:
        """The open connection (a new one after :meth:`close`).

        :mod:`~seawall.storage.s3.leannet`: ``_socket``/``_ssl`` under a
        plain HTTP/1.1 exchange, not ``http.client`` (it pulls in the
        ``email`` package) nor ``socket``/``ssl`` (~20 ms of imports per
        push, measured there).
        """
        if self._conn is not None:
            return self._conn
        from seawall.storage.s3.leannet import connect

        cfg = self.config
        self._conn = connect(
            self._endpoint_host().strip("[]"),
            cfg.port,
            timeout=self.timeout,
            secure=cfg.secure,
            ca_bundle=cfg.ca_bundle,
        )
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _host_header(self) -> str:
        cfg = self.config
        default = 443 if cfg.secure else 80
        host = self._endpoint_host()
        return host if cfg.port == default else f"{host}:{cfg.port}"

    def _path(self, key: str) -> str:
        cfg = self.config
        encoded = quote(key, b"/")
        if cfg.virtual:
            return f"/{encoded}"
        return f"/{quote(cfg.bucket)}/{encoded}" if key else f"/{quote(cfg.bucket)}"

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
            conn = self._connect()
            if length and length <= 65536:
                conn.sendall(head + b"".join(body))
            else:
                conn.sendall(head)
                for piece in body:
                    conn.sendall(piece)
            answer, keep = read_response(conn.rfile, method)
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
        code = answer.code() if answer.status >= 400 else ""
        if answer.status >= 500 or code in RETRYABLE_CODES or code == CONDITIONAL_CONFLICT:
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
            for block in xml_values(text, "Contents"):
                raw = block.encode()
                key = xml_values(raw, "Key")
                size = xml_values(raw, "Size")
                modified = xml_values(raw, "LastModified")
                if key:
                    out.append(
                        ObjectEntry(
                            key[0][strip:],
                            int(size[0]) if size and size[0].isdigit() else 0,
                            modified[0] if modified else "",
                        )
                    )
            truncated = xml_values(text, "IsTruncated")
            tokens = xml_values(text, "NextContinuationToken")
            if not (truncated and truncated[0] == "true" and tokens):
                return out
            token = tokens[0]
