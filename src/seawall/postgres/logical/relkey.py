"""The key of a table or sequence in the content statistics: ``schema.name``, unambiguous.

Why: stats formats 1 and 2 keyed relations by ``f"{schema}.{name}"``, so
``"a.b".c`` (schema ``a.b``) and ``a."b.c"`` (table ``b.c``) had one key,
``a.b.c``. The manifest then recorded one of the two tables, and verify
--deep compared whichever table the restored copy listed under that key: a
restore that lost one of them went unnoticed when both held the same rows.

Since stats format 3 a part that contains a dot or a double quote is
written as a quoted SQL identifier (``"a.b".c``, ``a."b.c"``, ``"x""y".t``);
every other part is written as before, so the keys of ordinary names (all
of them, in almost every database) are unchanged and old manifests read the
same. A key is parsed back unambiguously: an unquoted part holds neither a
dot nor a quote. Manifests of older formats are compared through
:func:`legacy_key` (see ``deepstats``).
"""

from __future__ import annotations

#: the content statistics format whose keys are :func:`relation_key` (older: :func:`legacy_key`)
QUOTED_KEYS_FORMAT = 3


def _part(name: str) -> str:
    if "." in name or '"' in name:
        return '"' + name.replace('"', '""') + '"'
    return name


def relation_key(schema: str, name: str) -> str:
    """``schema.name`` with a part quoted when it holds a dot or a double quote."""
    return f"{_part(schema)}.{_part(name)}"


def split_key(key: str) -> tuple[str, str]:
    """(schema, name) of a :func:`relation_key`; ValueError for anything else."""
    parts: list[str] = []
    i = 0
    while True:
        if key.startswith('"', i):
            chars: list[str] = []
            i += 1
            while True:
                end = key.find('"', i)
                if end < 0:
                    raise ValueError(f"unterminated quoted name in key {key!r}")
                chars.append(key[i:end])
                if key.startswith('"', end + 1):  # a doubled quote
                    chars.append('"')
                    i = end + 2
                    continue
                i = end + 1
                break
            parts.append("".join(chars))
        else:
            end = key.find(".", i)
            stop = len(key) if end < 0 else end
            parts.append(key[i:stop])
            i = stop
        if i == len(key):
            break
        if key[i] != "." or len(parts) == 2:
            raise ValueError(f"not a schema.name key: {key!r}")
        i += 1
    if len(parts) != 2:
        raise ValueError(f"not a schema.name key: {key!r}")
    return parts[0], parts[1]


def legacy_key(key: str) -> str:
    """The key stats formats 1 and 2 gave the same relation (``schema.name``, unquoted)."""
    schema, name = split_key(key)
    return f"{schema}.{name}"
