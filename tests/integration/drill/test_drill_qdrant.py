"""`seawall drill` over real snapshot backups of the Qdrant test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seawall.app.backup import qdrant_backup as backup
from seawall.app.drill import run_drill
from seawall.catalog.store import Catalog
from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.storage.local import LocalStorage

from ..qdrant.conftest import MakeCtx


def _state(server: Any) -> dict[str, int]:
    return {name: server.points_count(name) for name in server.collection_names()}


def _backed_up(server: Any, make_ctx: MakeCtx) -> MakeCtx:
    server.create_collection("docs", 8, points=300, seed=1)
    server.create_collection("faq", 4, points=40, seed=2)
    backup(make_ctx(server), ["docs", "faq"]).raise_for_status()
    return make_ctx


def test_drill_restores_each_collection_aside_searches_and_records(
    qdrant_server: Any, make_ctx: MakeCtx, qdir: Path
) -> None:
    _backed_up(qdrant_server, make_ctx)
    [docs] = Catalog(LocalStorage(qdir)).scan("qdrant", "snapshot", "docs").manifests
    sample = docs.qdrant.sample  # type: ignore[union-attr]
    assert sample and all(len(p["top"]) == 3 for p in sample["points"])  # recorded at backup
    before = _state(qdrant_server)
    result = run_drill(make_ctx(qdrant_server, engines=["qdrant"]))
    assert result.passed, [t.message() for t in result.targets]
    assert [t.series for t in result.targets] == ["docs", "faq"]
    for t in result.targets:
        checks = {c.name: (c.status, c.detail) for c in t.checks}
        assert checks["restore"][0] == "passed"
        assert checks["points count"] == (
            "passed",
            f"{before[t.series]} points, as recorded",
        )
        assert checks["sample searches"][0] == "passed"
        assert t.scratch == f"seawall_drill_{result.id.lower().replace('-', '_')}_{t.series}"
        assert t.rto_seconds is not None and t.rpo_seconds is not None
    assert _state(qdrant_server) == before  # scratch collections deleted, sources untouched
    reg = make_registry(SeawallCollector(qdir))
    for name in ("docs", "faq"):
        labels = {"engine": "qdrant", "series": name}
        assert reg.get_sample_value("seawall_drill_last_success", labels) == 1
        assert reg.get_sample_value("seawall_drill_rto_seconds", labels) is not None


def test_corrupted_snapshot_fails_the_drill_names_the_check_and_cleans_up(
    qdrant_server: Any, make_ctx: MakeCtx, qdir: Path
) -> None:
    _backed_up(qdrant_server, make_ctx)
    [docs] = Catalog(LocalStorage(qdir)).scan("qdrant", "snapshot", "docs").manifests
    art = qdir / "qdrant" / "snapshot" / "docs" / docs.id / docs.artifacts[0].name
    data = bytearray(art.read_bytes())
    data[len(data) // 2] ^= 0x01
    art.write_bytes(bytes(data))
    before = _state(qdrant_server)
    result = run_drill(make_ctx(qdrant_server, engines=["qdrant"]))
    assert not result.passed
    by_series = {t.series: t for t in result.targets}
    assert by_series["docs"].failed_checks == ["restore"]
    assert by_series["faq"].passed
    assert _state(qdrant_server) == before
    reg = make_registry(SeawallCollector(qdir))
    assert (
        reg.get_sample_value("seawall_drill_last_success", {"engine": "qdrant", "series": "docs"})
        == 0
    )


def test_leftover_of_a_killed_drill_is_deleted_by_the_next_one(
    qdrant_server: Any, make_ctx: MakeCtx
) -> None:
    _backed_up(qdrant_server, make_ctx)
    # what a drill killed with -9 after its upload leaves behind
    qdrant_server.create_collection("seawall_drill_20200101t000000z_1a2b_docs", 8, points=5)
    # not a drill leftover: the name does not carry a drill id
    qdrant_server.create_collection("seawall_drill_notes", 4, points=3)
    result = run_drill(make_ctx(qdrant_server, engines=["qdrant"]))
    assert result.passed
    assert result.leftovers_removed == [
        "qdrant collection seawall_drill_20200101t000000z_1a2b_docs"
    ]
    assert qdrant_server.collection_names() == ["docs", "faq", "seawall_drill_notes"]


def test_top_hits_that_differ_from_the_backups_fail_the_sample_searches(
    qdrant_server: Any, make_ctx: MakeCtx, qdir: Path
) -> None:
    _backed_up(qdrant_server, make_ctx)
    catalog = Catalog(LocalStorage(qdir))
    [docs] = catalog.scan("qdrant", "snapshot", "docs").manifests
    point = docs.qdrant.sample["points"][0]  # type: ignore[union-attr,index]
    point["top"] = list(reversed(point["top"]))  # what another ranking would have recorded
    catalog.write(docs)
    result = run_drill(make_ctx(qdrant_server, engines=["qdrant"]))
    target = next(t for t in result.targets if t.series == "docs")
    assert target.failed_checks == ["sample searches"]
    assert f"search for point {point['id']}: top hits" in target.message()


LONG_SOURCES = [
    "x" * 240,  # 240 characters: the scratch name was 276, past Qdrant's 255
    "知识库产品文档客服问答" * 7,  # 77 characters, 231 bytes: a 267-byte directory name
]


def test_a_long_collection_name_gets_a_scratch_name_qdrant_accepts(
    qdrant_server: Any, make_ctx: MakeCtx
) -> None:
    """``seawall_drill_<id>_`` (36 characters) before a source name of more than
    ~220 characters outgrew Qdrant's collection name limit: every drill of it
    failed at the upload (422) although the backup was good."""
    for i, name in enumerate(LONG_SOURCES):
        qdrant_server.create_collection(name, 4, points=20, seed=i)
    backup(make_ctx(qdrant_server), LONG_SOURCES).raise_for_status()
    before = _state(qdrant_server)
    result = run_drill(make_ctx(qdrant_server, engines=["qdrant"]))
    assert result.passed, [t.message() for t in result.targets]
    scratch = [t.scratch or "" for t in result.targets]
    key = result.id.lower().replace("-", "_")
    for name, target in zip(sorted(LONG_SOURCES), result.targets, strict=True):
        assert target.series == name
        assert target.scratch is not None and target.scratch.startswith(f"seawall_drill_{key}_")
        assert len(target.scratch.encode()) <= 255
        checks = {c.name: c.status for c in target.checks}
        assert checks["points count"] == "passed" and checks["sample searches"] == "passed"
    assert len(set(scratch)) == len(scratch)  # each source its own scratch collection
    assert _state(qdrant_server) == before  # scratch collections deleted


def test_a_truncated_scratch_name_stays_unique_and_a_leftover() -> None:
    from seawall.qdrant.drill import is_leftover, scratch_collection

    drill_id = "20260101T000000Z-abcd"
    a = scratch_collection(drill_id, "y" * 300 + "a")
    b = scratch_collection(drill_id, "y" * 300 + "b")
    assert a != b and len(a.encode()) <= 255 and len(b.encode()) <= 255
    assert is_leftover(a, "20270101T000000Z-abcd")
    short = scratch_collection(drill_id, "docs")
    assert short == "seawall_drill_20260101t000000z_abcd_docs"  # unchanged when it fits
