"""Stats keys (postgres/logical/relkey.py): one key per relation, parsed back exactly."""

from __future__ import annotations

import pytest

from seawall.postgres.logical.relkey import legacy_key, relation_key, split_key

NAMES = [
    ("public", "t"),
    ("a.b", "c"),
    ("a", "b.c"),
    ("a", 'q"t'),
    ('"', "."),
    ("x.", ".y"),
    ('"a"', '""'),
    ("ünï", "cödé.ø"),
]


def test_ordinary_names_keep_their_old_key() -> None:
    assert relation_key("public", "items") == "public.items"
    assert relation_key("app", "Users 2") == "app.Users 2"


def test_dotted_names_no_longer_collide() -> None:
    assert relation_key("a.b", "c") == '"a.b".c'
    assert relation_key("a", "b.c") == 'a."b.c"'
    assert len({relation_key(s, n) for s, n in NAMES}) == len(NAMES)


@pytest.mark.parametrize(("schema", "name"), NAMES)
def test_keys_parse_back(schema: str, name: str) -> None:
    key = relation_key(schema, name)
    assert split_key(key) == (schema, name)
    assert legacy_key(key) == f"{schema}.{name}"


@pytest.mark.parametrize("bad", ["nodot", '"open.t', "a.b.c", '"a"x.t', "a.b.", '"a".b.c'])
def test_other_strings_are_not_keys(bad: str) -> None:
    with pytest.raises(ValueError):
        split_key(bad)
