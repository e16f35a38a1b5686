"""The lean S3 client's SigV4 signer against AWS's published S3 examples and botocore.

The four examples are the header-based authentication examples of the
Amazon S3 API reference ("Signature Calculations for the Authorization
Header: Transferring Payload in a Single Chunk"): access key
AKIAIOSFODNN7EXAMPLE, bucket examplebucket, us-east-1, 2013-05-24. botocore
(a test dependency) then signs random requests as a second, independent
oracle: its signer is what every AWS SDK user's request is checked against.
"""

from __future__ import annotations

import hashlib
import random
import string

import pytest

from seawall.storage.s3 import lean, leanconf, sigv4

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DATE = "20130524T000000Z"
HOST = "examplebucket.s3.amazonaws.com"


def _sig(auth: str) -> str:
    return auth.rsplit("Signature=", 1)[1]


@pytest.mark.parametrize(
    ("method", "path", "query", "extra", "payload", "expected"),
    [
        (  # GET Object with a Range header
            "GET",
            "/test.txt",
            {},
            {"range": "bytes=0-9"},
            sigv4.EMPTY_SHA256,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (  # PUT Object: a key needing percent-encoding, a Date and a storage class
            "PUT",
            "/test%24file.text",
            {},
            {"date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
            hashlib.sha256(b"Welcome to Amazon S3.").hexdigest(),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
        (  # GET Bucket lifecycle: a sub-resource without a value
            "GET",
            "/",
            {"lifecycle": ""},
            {},
            sigv4.EMPTY_SHA256,
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (  # GET Bucket (list objects): query parameters sorted
            "GET",
            "/",
            {"max-keys": "2", "prefix": "J"},
            {},
            sigv4.EMPTY_SHA256,
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
)
def test_aws_published_examples(
    method: str,
    path: str,
    query: dict[str, str],
    extra: dict[str, str],
    payload: str,
    expected: str,
) -> None:
    headers = {"host": HOST, "x-amz-date": DATE, "x-amz-content-sha256": payload, **extra}
    auth = sigv4.sign(
        method, path, query, headers, payload,
        access_key=AK, secret_key=SK, region="us-east-1", amz_date=DATE,
    )  # fmt: skip
    assert _sig(auth) == expected
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request, ")


def test_key_encoding_matches_the_examples() -> None:
    client = lean.Client(leanconf.Config("s3://examplebucket", access_key=AK, secret_key=SK))
    assert client._path("test$file.text") == "/test%24file.text"  # virtual-hosted (no endpoint)
    assert client._host_header() == HOST.replace(".s3.", ".s3.us-east-1.")


def test_signer_agrees_with_botocore() -> None:
    """Random keys, queries, headers and bodies: the same Authorization as botocore's SigV4."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    rng = random.Random(14)
    alphabet = string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@ %/"
    for _ in range(200):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))).strip("/") or "k"
        body = rng.randbytes(rng.randint(0, 300))
        query = {
            "".join(rng.choice(string.ascii_lowercase + "-") for _ in range(rng.randint(1, 8))): (
                "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            )
            for _ in range(rng.randint(0, 3))
        }
        token = rng.choice([None, "FQoGZXIvYXdzE" + "x" * rng.randint(0, 30)])
        region = rng.choice(["us-east-1", "eu-central-1", "garage"])
        cfg = leanconf.Config(
            "s3://bucket-1", access_key="AKID" + str(rng.random()), secret_key=str(rng.random()),
            token=token, region=region, endpoint="http://127.0.0.1:8333",
        )  # fmt: skip
        client = lean.Client(cfg)
        path = client._path(key)
        payload = hashlib.sha256(body).hexdigest()
        amz_date = "20261205T235959Z"
        headers = {
            "host": client._host_header(),
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload,
            "if-none-match": "*",
        }
        if token:
            headers["x-amz-security-token"] = token
        ours = sigv4.sign(
            "PUT", path, query, headers, payload, access_key=cfg.access_key,
            secret_key=cfg.secret_key, region=region, amz_date=amz_date,
        )  # fmt: skip
        url = f"http://127.0.0.1:8333{path}"
        if query:
            url += "?" + sigv4.canonical_query(query)
        request = AWSRequest(method="PUT", url=url, data=body, headers=dict(headers))
        request.context["timestamp"] = amz_date
        signer = S3SigV4Auth(Credentials(cfg.access_key, cfg.secret_key, token), "s3", region)
        canonical = signer.canonical_request(request)
        theirs_sig = signer.signature(signer.string_to_sign(request, canonical), request)
        assert _sig(ours) == theirs_sig, (key, query)


def test_the_error_codes_have_one_home_that_imports_nothing() -> None:
    """Both clients classify with storage/s3/codes.py, a leaf the wal-push budget allows."""
    import json
    import subprocess
    import sys

    from seawall.storage.s3 import codes, retry

    assert lean.RETRYABLE_CODES is codes.RETRYABLE_CODES is retry.RETRYABLE_CODES
    assert lean.CREDENTIAL_CODES is codes.CREDENTIAL_CODES is retry.CREDENTIAL_CODES
    assert {"SlowDown", "503", "InternalError"} <= codes.RETRYABLE_CODES
    assert not codes.RETRYABLE_CODES & codes.CREDENTIAL_CODES
    probe = (
        "import sys; before = set(sys.modules); import seawall.storage.s3.codes; "
        "print(sorted(set(sys.modules) - before - {'__future__'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.replace("'", '"')) == [
        "seawall",
        "seawall.storage",
        "seawall.storage.s3",
        "seawall.storage.s3.codes",
    ]


def test_config_reads_the_standard_variables(tmp_path: object) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "secret"
    secret.write_text("s3cr3t\n")
    env = {
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY_FILE": str(secret),
        "AWS_REGION": "eu-west-3",
        "AWS_ENDPOINT_URL": "https://minio.internal:9000/",
        "AWS_ENDPOINT_URL_S3": "http://[::1]:8333",
        "AWS_CA_BUNDLE": "/etc/ca.pem",
        "S3_SSE": "aws:kms",
        "S3_SSE_KMS_KEY_ID": "alias/x",
    }
    cfg = leanconf.config_from_env("s3://b/some/prefix/", env)
    assert (cfg.bucket, cfg.prefix, cfg.secret_key, cfg.region) == (
        "b",
        "some/prefix",
        "s3cr3t",
        "eu-west-3",
    )
    assert (cfg.host, cfg.port, cfg.secure, cfg.virtual) == ("[::1]", 8333, False, False)
    assert (cfg.sse, cfg.sse_kms_key_id, cfg.ca_bundle) == ("aws:kms", "alias/x", "/etc/ca.pem")
    assert (
        cfg.key("postgresql/wal/main/archive.json")
        == "some/prefix/postgresql/wal/main/archive.json"
    )
    aws = leanconf.config_from_env(
        "s3://b", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
    )
    assert (aws.host, aws.port, aws.secure, aws.virtual) == (
        "s3.us-east-1.amazonaws.com",
        443,
        True,
        True,
    )
    for general in ({"AWS_PROFILE": "prod"}, {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"}, {}):
        with pytest.raises(leanconf.NeedsGeneral):
            leanconf.config_from_env(
                "s3://b", {"AWS_ACCESS_KEY_ID": "a", **general} if general else {}
            )
    with pytest.raises(leanconf.S3Error, match="AWS_SECRET_ACCESS_KEY_FILE: cannot read"):
        leanconf.config_from_env(
            "s3://b", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY_FILE": str(secret) + "x"}
        )
