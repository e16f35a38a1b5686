"""The CREATE DATABASE options a restore derives from a manifest (pure)."""

from __future__ import annotations

import pytest
from psycopg import sql

from seawall.catalog.models import PostgresInfo
from seawall.errors import RefusedError
from seawall.postgres.logical.dblocale import _options, describe


def _sql(info: PostgresInfo, server_num: int, default: str = "UTF8") -> str:
    return sql.SQL(" ").join(_options(info, server_num, default)).as_string(None)


def test_libc_database_on_15_names_the_provider() -> None:
    info = PostgresInfo(encoding="LATIN1", lc_collate="C", lc_ctype="C", locale_provider="libc")
    assert _sql(info, 150020) == (
        "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' LOCALE_PROVIDER \"libc\""
    )
    # before 15 there is no LOCALE_PROVIDER option (libc only)
    assert _sql(info, 140010) == "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"


def test_icu_locale_and_rules() -> None:
    info = PostgresInfo(
        encoding="UTF8", lc_collate="C.utf8", lc_ctype="C.utf8", locale_provider="icu",
        icu_locale="de-DE", icu_rules="&a < b",
    )  # fmt: skip
    assert _sql(info, 160000).endswith(
        "LOCALE_PROVIDER \"icu\" ICU_LOCALE 'de-DE' ICU_RULES '&a < b'"
    )
    assert "ICU_LOCALE 'de-DE'" in describe(info)


@pytest.mark.parametrize(
    ("provider", "server", "needs"), [("icu", 140000, 15), ("builtin", 160000, 17)]
)
def test_provider_the_server_lacks_is_refused(provider: str, server: int, needs: int) -> None:
    info = PostgresInfo(
        encoding="UTF8", lc_collate="C", lc_ctype="C", locale_provider=provider,  # type: ignore[arg-type]
        icu_locale="und" if provider == "icu" else None,
        builtin_locale="C.UTF-8" if provider == "builtin" else None,
    )  # fmt: skip
    with pytest.raises(RefusedError, match=f"PostgreSQL {needs} or newer"):
        _sql(info, server)


def test_manifest_without_locale_gets_c_only_when_the_encoding_differs() -> None:
    old = PostgresInfo(encoding="LATIN1")
    assert _sql(old, 150000, default="UTF8") == "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
    assert _sql(PostgresInfo(encoding="UTF8"), 150000, default="UTF8") == "ENCODING 'UTF8'"
