"""S3 options come from the standard AWS variables, plus *_FILE secrets and SSE,
read by one reader (leanconf.AwsEnv) for the general backend and the lean client."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.errors import ConfigError
from seawall.storage.s3.config import s3_options
from seawall.storage.s3.leanconf import AwsEnv, S3Error, config_from_env


def test_endpoint_region_and_secrets_from_the_environment() -> None:
    o = s3_options(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
            "AWS_ENDPOINT_URL_S3": "https://s3.internal:443",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
            "AWS_CA_BUNDLE": "/etc/ssl/private-ca.pem",
        }
    )
    assert o.endpoint_url == "https://s3.internal:443"  # the S3-specific one wins
    assert o.region == "eu-west-1"
    assert (o.access_key, o.secret_key, o.session_token) == ("AKIDEXAMPLE", "wJalrXUtnFEMI", None)
    assert o.ca_bundle == "/etc/ssl/private-ca.pem"
    assert "wJalrXUtnFEMI" not in repr(o)  # secrets stay out of reprs (and so of logs)


def test_secret_files(tmp_path: Path) -> None:
    (tmp_path / "id").write_text("AKIDFILE\n")
    (tmp_path / "secret").write_text("s3cr3t\n")
    o = s3_options(
        {
            "AWS_ACCESS_KEY_ID_FILE": str(tmp_path / "id"),
            "AWS_SECRET_ACCESS_KEY_FILE": str(tmp_path / "secret"),
        }
    )
    assert (o.access_key, o.secret_key) == ("AKIDFILE", "s3cr3t")
    with pytest.raises(ConfigError, match=r"AWS_SESSION_TOKEN_FILE: cannot read .*missing") as e:
        s3_options({"AWS_SESSION_TOKEN_FILE": str(tmp_path / "missing")})
    assert "s3cr3t" not in str(e.value)


def test_server_side_encryption() -> None:
    assert s3_options({"S3_SSE": "AES256"}).extra_put_args == {"ServerSideEncryption": "AES256"}
    kms = s3_options({"S3_SSE": "aws:kms", "S3_SSE_KMS_KEY_ID": "alias/backups"})
    assert kms.extra_put_args == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/backups"}
    with pytest.raises(ConfigError, match="S3_SSE: expected"):
        s3_options({"S3_SSE": "yes"})
    with pytest.raises(ConfigError, match="needs S3_SSE=aws:kms"):
        s3_options({"S3_SSE_KMS_KEY_ID": "k"})


def test_addressing_style_and_bad_endpoint() -> None:
    assert s3_options({"S3_ADDRESSING_STYLE": "Virtual"}).addressing_style == "virtual"
    with pytest.raises(ConfigError, match="S3_ADDRESSING_STYLE"):
        s3_options({"S3_ADDRESSING_STYLE": "dns"})
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL: expected"):
        s3_options({"AWS_ENDPOINT_URL": "127.0.0.1:8333"})


# -- the one reader (leanconf.AwsEnv) both S3 clients are built on (D6)

KEYS = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}


def test_the_reader_refuses_bad_values_with_one_line_naming_the_variable() -> None:
    """Every refusal is an S3Error of kind config from the reader: the lean client
    raises it as is (wal-push exit 2), s3_options turns it into ConfigError (exit 2)."""
    for bad, named in (
        ({"S3_SSE_KMS_KEY_ID": "alias/x"}, "S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms"),
        ({"S3_SSE": "AES256", "S3_SSE_KMS_KEY_ID": "alias/x"}, "needs S3_SSE=aws:kms"),
        ({"S3_SSE": "rot13"}, "S3_SSE: expected"),
        ({"S3_ADDRESSING_STYLE": "sideways"}, "S3_ADDRESSING_STYLE: expected"),
        ({"AWS_ENDPOINT_URL": "ftp://h"}, "AWS_ENDPOINT_URL: expected"),
    ):
        with pytest.raises(S3Error, match=named) as err:
            AwsEnv({**KEYS, **bad})
        assert err.value.kind == "config"
        with pytest.raises(S3Error, match=named):
            config_from_env("s3://bkt", {**KEYS, **bad})
        with pytest.raises(ConfigError, match=named):
            s3_options({**KEYS, **bad})


def test_the_reader_values_and_what_each_client_makes_of_them(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    env = {
        **KEYS,
        "AWS_SESSION_TOKEN_FILE": str(tmp_path / "token"),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        "S3_ADDRESSING_STYLE": " Auto ",
        "S3_SSE": "aws:kms",
        "S3_SSE_KMS_KEY_ID": "alias/k",
    }
    aws = AwsEnv(env)
    assert (aws.token, aws.region, aws.addressing, aws.general) == (
        "tok",
        "eu-west-1",
        "auto",
        None,
    )
    assert "tok" not in repr(aws) and "'s'" not in repr(aws)
    lean = config_from_env("s3://bkt/p", env)
    assert (lean.token, lean.region, lean.virtual, lean.port) == ("tok", "eu-west-1", False, 8333)
    opts = s3_options(env)
    assert (opts.session_token, opts.region, opts.addressing_style) == ("tok", "eu-west-1", "auto")
    assert opts.extra_put_args == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/k"}
    # unset region: the lean client signs for us-east-1, boto3 asks its own chain
    assert config_from_env("s3://bkt", KEYS).region == "us-east-1"
    assert s3_options(KEYS).region is None
    assert AwsEnv({"AWS_PROFILE": "prod"}).general == "AWS_PROFILE"


def test_seawall_prefixed_s3_variables_reach_the_general_backend_too() -> None:
    """Before one reader, SEAWALL_S3_SSE (and the addressing style) reached the lean
    wal-push only: WAL got server-side encryption, backups did not."""
    env = {"SEAWALL_S3_SSE": "AES256", "SEAWALL_S3_ADDRESSING_STYLE": "virtual"}
    opts = s3_options(env)
    assert opts.extra_put_args == {"ServerSideEncryption": "AES256"}
    assert opts.addressing_style == "virtual"
    assert config_from_env("s3://bkt", {**KEYS, **env}).sse == "AES256"


def test_an_empty_secret_file_is_refused_by_both_clients(tmp_path: Path) -> None:
    """It used to be "no credentials" for the lean client (and a fall back to the
    general path) but an error for the general one; one rule now."""
    (tmp_path / "empty").write_text("\n")
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY_FILE": str(tmp_path / "empty")}
    with pytest.raises(S3Error, match=r"AWS_SECRET_ACCESS_KEY_FILE: .* is empty"):
        config_from_env("s3://bkt", env)
    with pytest.raises(ConfigError, match=r"AWS_SECRET_ACCESS_KEY_FILE: .* is empty"):
        s3_options(env)
