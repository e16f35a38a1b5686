"""Sample points: what a backup records so a restored copy can be searched.

A backup records a few points with their vectors and, for each vector, the
ids the live collection's search by it returned (``top``). ``verify
--deep``, restore and drill search each recorded vector again and compare.

Why every kind of vector: a production collection is often not one dense
vector. A sparse-only collection (BM25/SPLADE), a multivector one (ColBERT)
or a hybrid one has indexes of its own (sparse inverted index, multivector
HNSW). Only dense vectors used to be searched, so a sparse-only or
multivector collection was checked by its points count alone and the drill
reported "no sample points recorded" although points were recorded. Now each
dense, multi and sparse vector of a sample point is searched, by its name.

Manifest format (compatible both ways): ``top`` keeps the ids of the search
older seawall versions made (the unnamed dense vector, else the first named
dense vector by name); ``tops`` maps every other vector name to its ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: (point id, vector as the REST API takes it, vector name or None)
Query = tuple[Any, Any, str | None]


def _dense(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    )


def _multi(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_dense(row) for row in value)


def _sparse(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"indices", "values"}
        and isinstance(value["indices"], list)
        and isinstance(value["values"], list)
        and bool(value["indices"])
        and len(value["indices"]) == len(value["values"])
    )


def _clean(value: Any) -> Any:
    if _dense(value):
        return [float(x) for x in value]
    if _multi(value):
        return [[float(x) for x in row] for row in value]
    return {
        "indices": [int(i) for i in value["indices"]],
        "values": [float(v) for v in value["values"]],
    }


def _searchable(value: Any) -> bool:
    return _dense(value) or _multi(value) or _sparse(value)


#: rows of a multivector kept in a sample (a ColBERT point has one row per token)
SAMPLE_ROWS = 4
#: entries of a sparse vector kept in a sample (the largest weights)
SAMPLE_TERMS = 64


def _trimmed(value: Any) -> Any:
    if _multi(value) and len(value) > SAMPLE_ROWS:
        return value[:SAMPLE_ROWS]
    if _sparse(value) and len(value["indices"]) > SAMPLE_TERMS:
        keep = sorted(range(len(value["indices"])), key=lambda k: -abs(float(value["values"][k])))[
            :SAMPLE_TERMS
        ]
        keep.sort()
        return {
            "indices": [value["indices"][k] for k in keep],
            "values": [value["values"][k] for k in keep],
        }
    return value


def trim(point: dict[str, Any]) -> dict[str, Any]:
    """A sample point small enough for a manifest, searchable all the same.

    Why: every row of a late-interaction point (one 128-dimensional vector per
    token, hundreds of tokens) went into the manifest: ~0.8 MB for 3 points of
    100 tokens, read at every catalog scan and exporter scrape. A multivector
    keeps its first rows and a sparse vector its largest weights: a MaxSim or
    dot-product search by that part still ranks the point by its own vectors,
    and the top hits recorded at backup time come from the same trimmed
    search, so the checks after a restore compare like with like. Dense
    vectors are kept whole (a part of one is no query).
    """
    vector = point.get("vector")
    if isinstance(vector, dict) and not _sparse(vector):
        point["vector"] = {name: _trimmed(value) for name, value in vector.items()}
    else:
        point["vector"] = _trimmed(vector)
    return point


def legacy_name(point: dict[str, Any]) -> str | bool | None:
    """The vector the ``top`` of ``point`` belongs to (older versions searched
    only that one): None for the unnamed vector, a name, or False for none."""
    vector = point.get("vector")
    if _dense(vector):
        return None
    if isinstance(vector, dict) and not _sparse(vector):
        for name, value in sorted(vector.items()):
            if _dense(value):
                return str(name)
    return False


def point_queries(point: dict[str, Any]) -> list[Query]:
    """One search per vector of a sample point (unnamed, or each name in order)."""
    vector = point.get("vector")
    pid = point.get("id")
    if _dense(vector) or _multi(vector):
        return [(pid, _clean(vector), None)]
    if not isinstance(vector, dict) or _sparse(vector):
        return []
    return [
        (pid, _clean(value), str(name))
        for name, value in sorted(vector.items())
        if _searchable(value)
    ]


def sample_vectors(sample: dict[str, Any] | None) -> list[Query]:
    """(point id, vector, vector name) for every searchable vector of a sample."""
    out: list[Query] = []
    for point in (sample or {}).get("points", []):
        if isinstance(point, dict):
            out.extend(point_queries(point))
    return out


def record_top(point: dict[str, Any], using: str | None, ids: list[Any]) -> None:
    """Remember what the live collection answered to the search by one vector."""
    if legacy_name(point) == using:
        point["top"] = ids
    else:
        point.setdefault("tops", {})[using or ""] = ids


def recorded_tops(sample: dict[str, Any] | None) -> dict[tuple[str, str | None], list[str]]:
    """(point id, vector name) -> ids of the top hits recorded at backup time."""
    out: dict[tuple[str, str | None], list[str]] = {}
    for p in (sample or {}).get("points", []):
        if not isinstance(p, dict):
            continue
        pid = str(p.get("id"))
        legacy = legacy_name(p)
        if (
            (legacy is None or isinstance(legacy, str))
            and isinstance(p.get("top"), list)
            and p["top"]
        ):
            out[(pid, legacy)] = [str(i) for i in p["top"]]
        tops = p.get("tops")
        for name, ids in tops.items() if isinstance(tops, dict) else ():
            if isinstance(ids, list) and ids:
                out[(pid, str(name) or None)] = [str(i) for i in ids]
    return out


def sample_found(pid: Any, hits: Iterable[Any], recorded_top: list[str] | None) -> bool:
    """Did a search by a sample point's vector answer as it should?

    The point among its own top hits is the usual proof. It is not a law:
    with ``Dot`` distance (and MaxSim over multivectors) a longer vector in
    the same direction outscores the point itself, and duplicated embeddings
    tie beyond the search's limit. So the answer the live collection gave at
    backup time (``top``) also counts: every one of those ids must come back.
    A point that is really gone fails both (its id was in ``top``, or ``top``
    names ids it cannot return).
    """
    got = {str(h) for h in hits}
    if str(pid) in got:
        return True
    return bool(recorded_top) and set(recorded_top or ()) <= got


def label(pid: Any, using: str | None) -> str:
    """How a search is named in messages: ``7`` or ``7 (vector 'text')``."""
    return str(pid) if using is None else f"{pid} (vector {using!r})"
