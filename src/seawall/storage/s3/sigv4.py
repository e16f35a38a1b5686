"""AWS Signature Version 4 for S3 requests, standard library only (hmac, hashlib).

The signer of the lean S3 client (:mod:`seawall.storage.s3.lean`): header
authentication with a signed payload hash. Tested against the S3 API
reference's published examples and against botocore's signer
(tests/unit/test_s3_lean_sigv4.py).
"""

from __future__ import annotations

import hashlib
import hmac

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def quote(text: str, safe: bytes = b"") -> str:
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
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(query.items()))


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
