"""docs/metrics.md is generated from the metric definitions and must not be stale."""

from __future__ import annotations

import re
from pathlib import Path

from seawall.exporter.metrics_def import METRICS
from seawall.exporter.metrics_doc import render

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def test_docs_metrics_md_is_current() -> None:
    doc = ROOT / "docs" / "metrics.md"
    assert doc.read_text() == render(), (
        "docs/metrics.md is stale: run `.venv/bin/python -m seawall.exporter.metrics_doc "
        "> docs/metrics.md`"
    )


def test_fixed_names_and_labels() -> None:
    for prefix, labels in (("postgres", ("database", "type")), ("qdrant", ("collection",))):
        for suffix in ("last_success_timestamp", "duration_seconds", "size_bytes", "status"):
            assert METRICS[f"{prefix}_backup_{suffix}"].labels == labels


def test_names_follow_the_naming_guide() -> None:
    for name, d in METRICS.items():
        assert NAME.match(name)
        assert name.startswith(("seawall_", "postgres_backup_", "qdrant_backup_")), name
        assert not name.endswith(("_total", "_count", "_sum", "_bucket")), name  # gauges
        assert "id" not in d.labels and "backup_id" not in d.labels
        assert d.help.endswith(".") or d.help.endswith(")"), name
