"""The lean S3 client (seawall.storage.s3.lean) against a real SeaweedFS, over HTTP and TLS.

The WAL tests drive it through wal-push/wal-fetch; these pin down the client
itself: every operation, the conditional create the one-version rule leans
on, listing with a prefix and pagination, and TLS with a private CA
(``AWS_CA_BUNDLE``) — trusted, and refused in one line when not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from seawall.storage.s3.lean import Client
from seawall.storage.s3.leanconf import S3Error, config_from_env
from tests.integration.storage.conftest import new_bucket, serve_s3
from tests.support.s3server import S3Server


@pytest.fixture(scope="module")
def tls_server() -> Iterator[S3Server]:
    yield from serve_s3("seawall-s3tls-", tls=True)


def _client(server: S3Server, url: str, **extra: str) -> Client:
    env = {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint,
        **extra,
    }
    return Client(config_from_env(url, env), deadline=5)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("secure", [False, True], ids=["http", "tls"])
def test_operations_and_conditional_create(tls_server: S3Server, secure: bool) -> None:
    bucket = new_bucket(tls_server)
    extra = (
        {"AWS_ENDPOINT_URL": tls_server.https_endpoint, "AWS_CA_BUNDLE": str(tls_server.ca_file)}
        if secure
        else {}
    )
    client = _client(tls_server, f"s3://{bucket}/pre/fix", **extra)
    try:
        first, second = b"first version", b"second version"
        assert client.put("a/key with space+plus", [first], _sha(first), if_none_match=True) == 200
        # the conditional create: the key exists, nothing is overwritten
        assert (
            client.put("a/key with space+plus", [second], _sha(second), if_none_match=True) == 412
        )
        assert client.get("a/key with space+plus") == first
        head = client.head("a/key with space+plus")
        assert head is not None and head["content-length"] == str(len(first))
        assert client.get("a/missing") is None and client.head("a/missing") is None
        big = bytes(range(256)) * 40_000  # 10 MB in several pieces, one PUT
        pieces = [big[i : i + 1_000_000] for i in range(0, len(big), 1_000_000)]
        assert client.put("a/big", pieces, _sha(big)) == 200
        assert client.get("a/big") == big
        stored = tls_server.client().get_object(Bucket=bucket, Key="pre/fix/a/big")
        assert stored["Body"].read() == big  # what boto3 reads is what we wrote
        for i in range(5):
            client.put(f"b/{i:02d}", [b"x"], _sha(b"x"))
        listed = [e.key for e in client.list("b/")]
        assert listed == [f"b/{i:02d}" for i in range(5)]
        client.delete("b/00")
        assert [e.key for e in client.list("b/")] == [f"b/{i:02d}" for i in range(1, 5)]
        assert client.list("nothing/") == []
    finally:
        client.close()


def test_listing_paginates(s3_server: S3Server) -> None:
    """More keys than one ListObjectsV2 page (SeaweedFS: 1,000): all of them, in order."""
    bucket = new_bucket(s3_server)
    admin = s3_server.client()
    for i in range(1005):
        admin.put_object(Bucket=bucket, Key=f"p/{i:05d}", Body=b"")
    client = _client(s3_server, f"s3://{bucket}")
    try:
        keys = [e.key for e in client.list("p/")]
    finally:
        client.close()
    assert keys == [f"p/{i:05d}" for i in range(1005)]


def test_tls_without_the_ca_is_refused_in_one_line(tls_server: S3Server) -> None:
    bucket = new_bucket(tls_server)
    client = _client(tls_server, f"s3://{bucket}", AWS_ENDPOINT_URL=tls_server.https_endpoint)
    try:
        with pytest.raises(S3Error) as err:
            client.get("anything")
    finally:
        client.close()
    message = str(err.value)
    assert err.value.kind == "unreachable"
    assert "not trusted" in message and "AWS_CA_BUNDLE" in message and "\n" not in message
