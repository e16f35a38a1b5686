"""--tablespace-mapping parsing and the manifest format of a backup with
tablespaces (ADR 0019): an older seawall must refuse such a manifest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import seawall.catalog.store as store
from seawall.catalog.models import Manifest, Pin, PostgresInfo, Tablespace
from seawall.catalog.store import CatalogError, parse_manifest
from seawall.errors import ConfigError
from seawall.postgres.physical.tblspc_restore import _escape, parse_mapping


def test_parse_mapping_as_pg_basebackup() -> None:
    assert parse_mapping(["/a=/b", "/c\\=d=/e=f/"]) == {"/a": Path("/b"), "/c=d": Path("/e=f")}
    for bad in ("/a", "=/b", "/a=", "rel=/b", "/a=rel"):
        with pytest.raises(ConfigError, match="tablespace-mapping"):
            parse_mapping([bad])
    with pytest.raises(ConfigError, match="twice"):
        parse_mapping(["/a=/b", "/a/=/c"])


def test_tablespace_map_escapes_as_postgresql() -> None:
    assert _escape("/x\\y\nz") == "/x\\\\y\\\nz"


def _manifest(pin: bool) -> Manifest:
    now = datetime.now(UTC)
    return Manifest(
        id="20261206T000000Z-abcd",
        engine="postgresql",
        kind="base",
        series="main",
        target="h:5432/postgres",
        status="success",
        started_at=now,
        postgres=PostgresInfo(
            tablespaces=[Tablespace(oid=16384, name="t", location="/ts", artifact="x")]
        ),
        pin=Pin(at=now) if pin else None,
    )


@pytest.mark.parametrize("pin", [False, True])
def test_a_manifest_with_tablespaces_is_refused_by_an_older_seawall(pin: bool) -> None:
    raw = _manifest(pin).to_json()
    assert json.loads(raw)["format_version"] == 3
    assert parse_manifest(raw, "m").postgres.tablespaces[0].oid == 16384  # type: ignore[union-attr,index]
    old = store.FORMAT_VERSION
    store.FORMAT_VERSION = 2
    try:
        with pytest.raises(CatalogError, match="newer than this seawall"):
            parse_manifest(raw, "m")
    finally:
        store.FORMAT_VERSION = old


def test_placements_refuse_nested_or_shared_targets_and_unknown_mappings(tmp_path: Path) -> None:
    from seawall.postgres.physical.tblspc_restore import plan_placements

    m = _manifest(False)
    assert m.postgres is not None
    m.postgres.tablespaces = [
        Tablespace(oid=1, name="a", location="/src/a", artifact="x"),
        Tablespace(oid=2, name="b", location="/src/b", artifact="y"),
    ]
    data = tmp_path / "data"
    ok = plan_placements(m, {"/src/a": tmp_path / "a", "/src/b": tmp_path / "b"}, data)
    assert [(p.space.name, p.target) for p in ok] == [("a", tmp_path / "a"), ("b", tmp_path / "b")]
    for mapping in (
        {"/src/a": tmp_path / "a", "/src/b": tmp_path / "a"},
        {"/src/a": tmp_path / "a", "/src/b": tmp_path / "a" / "b"},
        {"/src/a": tmp_path / "x", "/src/b": data / "b"},
        {"/src/a": tmp_path / "x", "/src/c": tmp_path / "c"},
    ):
        with pytest.raises(ConfigError):
            plan_placements(m, mapping, data)
