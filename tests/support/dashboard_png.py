"""Draw the dashboard's main panels from a real Prometheus, with matplotlib.

Why: Grafana is not available on these machines, but a person reviewing the
dashboard wants to see what an operator would see. The panels' own PromQL
(from dashboards/seawall.json, variables set to "All") is run as range
queries against the Prometheus of the end-to-end test, and each panel is
drawn with its unit, so the picture is the dashboard's data, not a mock-up.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

#: The panels drawn, in this order (titles in dashboards/seawall.json).
MAIN_PANELS = (
    "Last successful backup (age)",
    "Backup success rate",
    "Backup size trend",
    "Failures over time",
    "PITR window length",
    "WAL archive age and gaps",
    "Storage used",
    "Backup duration (last run)",
)
_UNIT_SCALE = {"s": (1.0, "seconds"), "bytes": (1.0, "bytes"), "percentunit": (100.0, "%")}


def panel_exprs(dashboard: dict[str, Any], title: str) -> list[tuple[str, str]]:
    """(PromQL with the variables set to All, legend format) of one panel."""
    (panel,) = [p for p in dashboard["panels"] if p.get("title") == title]
    out = []
    for t in panel["targets"]:
        expr = (
            t["expr"]
            .replace("$engine", ".*")
            .replace("$series", ".*")
            .replace("$__rate_interval", "15s")
        )
        out.append((expr, t.get("legendFormat", "")))
    return out


def legend(fmt: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


def render(api: str, dashboard_file: Path, start: float, end: float, out: Path) -> list[str]:
    """Write the PNG; returns the titles of panels that had data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(dashboard_file.read_text())
    by_title = {p.get("title"): p for p in dashboard["panels"]}
    fig, axes = plt.subplots(2, 4, figsize=(16, 6.4), dpi=60)
    with_data = []
    step = max(1.0, (end - start) / 200)
    for ax, title in zip(axes.flat, MAIN_PANELS, strict=True):
        unit = by_title[title]["fieldConfig"]["defaults"].get("unit", "")
        scale, label = _UNIT_SCALE.get(unit, (1.0, unit))
        drawn = 0
        for expr, fmt in panel_exprs(dashboard, title):
            answer = httpx.get(
                f"{api}/query_range",
                params={"query": expr, "start": start, "end": end, "step": step},
                timeout=30,
            ).json()
            assert answer["status"] == "success", answer
            for series in answer["data"]["result"]:
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) * scale for _, v in series["values"]]
                ax.plot(xs, ys, label=legend(fmt, series["metric"]) or expr[:30])
                drawn += 1
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds into the test", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        if drawn:
            with_data.append(title)
            ax.legend(fontsize=6, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("seawall dashboard: main panels, from the end-to-end test's Prometheus")
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)
    return with_data
