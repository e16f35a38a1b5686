"""S3 options come from the standard AWS variables, plus *_FILE secrets and SSE."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.errors import ConfigError
from seawall.storage.s3.config import s3_options


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
