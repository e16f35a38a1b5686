"""Backups of collections whose points are not their own nearest neighbours.

With ``Dot`` distance a longer vector in the same direction scores higher than
the point itself, and a collection of duplicated embeddings (the same chunk
stored twice) has more exact ties than a search returns. Both are ordinary
real-world data; a sample check that insists a point finds itself would call a
perfect backup corrupt and a complete restore "incomplete". The checks compare
with what the live collection answered at backup time (``top``) instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from seawall.app.backup import qdrant_backup as backup
from seawall.catalog.models import Manifest
from seawall.errors import VerificationError
from seawall.qdrant.drill import drill_collection
from seawall.qdrant.restore import restore
from seawall.qdrant.select import BackupSource, resolve
from seawall.qdrant.verify import verify_backup
from tests.qdrant_server import PointData

from .conftest import MakeCtx

BASE = [0.5, 0.25, -0.5, 0.125]


def _dot_by_magnitude(handle: Any, name: str) -> None:
    """Point i holds (i + 1) * BASE: searching point 0's vector ranks 9, 8, 7 first."""
    handle.create_collection(name, 4, distance="Dot")
    handle.upsert(
        name,
        [PointData(i, [x * (i + 1) for x in BASE], {"i": i}) for i in range(10)],
    )


def _duplicates(handle: Any, name: str) -> None:
    """Ten points with one and the same vector: more ties than a search returns."""
    handle.create_collection(name, 4, distance="Cosine")
    handle.upsert(name, [PointData(i, [1.0, 2.0, 3.0, 4.0], {"i": i}) for i in range(10)])


def _backed_up(ctx: Any, name: str) -> Manifest:
    m = backup(ctx, [name]).results[0].manifest
    assert m is not None and m.ok and m.qdrant is not None
    sample = m.qdrant.sample or {}
    assert sample.get("points") and all("top" in p for p in sample["points"])
    return m


@pytest.mark.parametrize("fill", [_dot_by_magnitude, _duplicates], ids=["dot", "duplicates"])
def test_verify_deep_restore_and_drill_accept_points_that_do_not_find_themselves(
    qdrant_server: Any, make_ctx: MakeCtx, fill: Any
) -> None:
    pytest.importorskip("qdrant_edge")
    fill(qdrant_server, "awk")
    ctx = make_ctx(qdrant_server)
    m = _backed_up(ctx, "awk")
    sample = (m.qdrant.sample or {}) if m.qdrant else {}
    # the premise: at least one sample point is not among its own top hits on the live server
    assert any(p["id"] not in p["top"] for p in sample["points"])

    res = verify_backup(ctx, ctx.storage, m, deep=True, write_back=True)
    assert res.ok, res.verification.message
    assert any("sample search" in c for c in res.verification.checks)

    restored = restore(ctx, resolve(ctx, m.id), target="awk-copy")
    assert restored.points_count == 10
    assert any("sample search" in c for c in restored.checks)

    target = drill_collection(ctx, m, "20991231T235959Z-abcd")
    assert target.passed, [(c.name, c.status, c.detail) for c in target.checks]


def test_a_sample_point_that_is_gone_still_fails_every_check(
    qdrant_server: Any, make_ctx: MakeCtx
) -> None:
    """The relaxed rule must not wave through data that is really missing."""
    pytest.importorskip("qdrant_edge")
    _dot_by_magnitude(qdrant_server, "gone")
    ctx = make_ctx(qdrant_server)
    m = _backed_up(ctx, "gone")
    assert m.qdrant is not None and m.qdrant.sample is not None
    # a sample whose recorded answer names a point the snapshot does not hold
    first = m.qdrant.sample["points"][0]
    first["id"] = 4242
    first["top"] = [4242, 9, 8]

    res = verify_backup(ctx, ctx.storage, m, deep=True, write_back=False)
    assert not res.ok and "4242" in res.verification.message

    with pytest.raises(VerificationError, match="4242"):
        restore(ctx, BackupSource(ctx.storage, m, in_catalog=True), target="gone-copy")

    target = drill_collection(ctx, m, "20991231T235959Z-abce")
    assert not target.passed
    assert any(c.name == "sample searches" and c.status == "failed" for c in target.checks)


LONG_NAMES = [
    "知识库产品文档客服问答" * 3,  # 33 characters, 99 bytes: Qdrant takes it
    "x" * 240,
]


@pytest.mark.parametrize("name", LONG_NAMES, ids=["cjk", "ascii-240"])
def test_a_collection_with_a_long_name_is_backed_up_listed_and_restored(
    qdrant_server: Any, make_ctx: MakeCtx, name: str
) -> None:
    """Its percent-encoding outgrew a file name: ENAMETOOLONG on the lock, every run."""
    qdrant_server.create_collection(name, 4, points=12, seed=3)
    ctx = make_ctx(qdrant_server)
    run = backup(ctx, [name])
    assert [r.error for r in run.results] == [None]
    m = run.results[0].manifest
    assert m is not None and m.ok and m.series == name
    assert ctx.catalog.find(m.id, "qdrant", "snapshot", name).id == m.id
    source = resolve(ctx, "latest", name)
    assert source.manifest.id == m.id
    assert verify_backup(ctx, ctx.storage, m, deep=False, write_back=True).ok
    restored = restore(ctx, source, target="long-copy")
    assert restored.points_count == 12
    # a second run lands in the same series (the encoding is stable)
    again = backup(ctx, [name]).results[0].manifest
    assert again is not None and again.ok
    assert [b.id for b in ctx.catalog.scan("qdrant").manifests if b.series == name] == [
        again.id,
        m.id,
    ]


def _http(handle: Any, method: str, path: str, body: Any = None) -> Any:
    import httpx

    headers = {"api-key": handle.api_key} if getattr(handle, "api_key", None) else {}
    res = httpx.request(method, handle.url + path, json=body, headers=headers, timeout=60)
    res.raise_for_status()
    return res.json()["result"]


def _aliases(handle: Any) -> dict[str, str]:
    return {
        a["alias_name"]: a["collection_name"] for a in _http(handle, "GET", "/aliases")["aliases"]
    }


def test_a_restore_after_the_collection_was_deleted_puts_its_aliases_back(
    qdrant_server: Any, make_ctx: MakeCtx
) -> None:
    """Aliases live outside collection snapshots; deleting a collection deletes them."""
    qdrant_server.create_collection("prod_v2", 4, points=10, seed=1)
    qdrant_server.create_collection("other", 4, points=3, seed=2)
    actions = [
        {"create_alias": {"collection_name": c, "alias_name": a}}
        for a, c in (("prod", "prod_v2"), ("search", "prod_v2"), ("misc", "other"))
    ]
    _http(qdrant_server, "POST", "/collections/aliases", {"actions": actions})
    ctx = make_ctx(qdrant_server)
    m = backup(ctx, ["prod_v2"]).results[0].manifest
    assert m is not None and m.ok and m.qdrant is not None
    assert m.qdrant.aliases == ["prod", "search"]

    # the disaster: the collection is gone, and its aliases with it; meanwhile
    # someone pointed "search" at another collection on purpose
    _http(qdrant_server, "DELETE", "/collections/prod_v2")
    create = {"create_alias": {"collection_name": "other", "alias_name": "search"}}
    _http(qdrant_server, "POST", "/collections/aliases", {"actions": [create]})
    assert _aliases(qdrant_server) == {"misc": "other", "search": "other"}

    beside = restore(ctx, resolve(ctx, m.id), target="prod_v2_copy")
    assert _aliases(qdrant_server) == {"misc": "other", "search": "other"}
    assert any("not touched" in c for c in beside.checks)

    res = restore(ctx, resolve(ctx, m.id))
    assert res.points_count == 10
    assert _aliases(qdrant_server) == {"prod": "prod_v2", "search": "other", "misc": "other"}
    text = " ".join(res.checks)
    assert "re-created: prod" in text and "'search' now points to 'other'" in text
    # the application's name answers again
    assert _http(qdrant_server, "POST", "/collections/prod/points/count", {"exact": True}) == {
        "count": 10
    }
