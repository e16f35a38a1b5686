"""Sample points of Qdrant backups: every vector kind searched, old manifests read."""

from __future__ import annotations

from seawall.qdrant.sample import (
    SAMPLE_ROWS,
    SAMPLE_TERMS,
    point_queries,
    record_top,
    recorded_tops,
    trim,
)


def test_each_vector_of_a_hybrid_point_is_one_search_by_name() -> None:
    point = {
        "id": 7,
        "vector": {
            "text": {"indices": [3, 9], "values": [0.5, 1.0]},
            "dense": [1, 2.5],
            "colbert": [[1.0, 0.0], [0.0, 1.0]],
            "empty": {"indices": [], "values": []},
        },
    }
    assert point_queries(point) == [
        (7, [[1.0, 0.0], [0.0, 1.0]], "colbert"),
        (7, [1.0, 2.5], "dense"),
        (7, {"indices": [3, 9], "values": [0.5, 1.0]}, "text"),
    ]
    assert point_queries({"id": 1, "vector": [[0.5, 1], [1, 0]]}) == [
        (1, [[0.5, 1.0], [1.0, 0.0]], None)
    ]


def test_top_stays_where_older_versions_read_it_and_tops_holds_the_rest() -> None:
    point = {"id": 7, "vector": {"b": [1.0], "a": [[1.0]], "s": {"indices": [1], "values": [1]}}}
    for using, ids in (("a", [7, 1]), ("b", [7, 2]), ("s", [7, 3])):
        record_top(point, using, ids)
    # older versions searched the first *dense* named vector only, and read "top"
    assert point["top"] == [7, 2]
    assert point["tops"] == {"a": [7, 1], "s": [7, 3]}
    assert recorded_tops({"points": [point]}) == {
        ("7", "b"): ["7", "2"],
        ("7", "a"): ["7", "1"],
        ("7", "s"): ["7", "3"],
    }
    # a manifest written before this version
    old = {"id": 3, "vector": [0.5, 0.5], "top": [3, 4]}
    assert recorded_tops({"points": [old]}) == {("3", None): ["3", "4"]}


def test_trim_keeps_the_first_rows_and_the_largest_weights() -> None:
    rows = [[float(i), 1.0] for i in range(SAMPLE_ROWS + 50)]
    terms = SAMPLE_TERMS + 36
    sparse = {"indices": list(range(terms)), "values": [float(i % 10) for i in range(terms)]}
    dense = [0.25] * 4096
    point = trim({"id": 1, "vector": {"c": rows, "s": sparse, "d": dense}})
    assert point["vector"]["c"] == rows[:SAMPLE_ROWS]
    kept = point["vector"]["s"]
    assert len(kept["indices"]) == SAMPLE_TERMS
    assert kept["indices"] == sorted(kept["indices"])  # still a valid sparse vector
    assert min(kept["values"]) >= 3.0  # the largest weights survive
    assert point["vector"]["d"] == dense  # a part of a dense vector is no query
    assert trim({"id": 2, "vector": rows})["vector"] == rows[:SAMPLE_ROWS]
