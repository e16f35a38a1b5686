"""Retention (issue 3): ``seawall prune --dry-run`` over 10,000 backups.

Target: under 1 s. The catalog is synthetic but written with seawall's own
manifest models (see bench/catalogfixture.py), 10 series x 1,000 backups six
hours apart, 2% failed runs, plus the WAL placeholder files the exporter
suite also uses.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import catalogfixture, measure
from bench.context import Context
from bench.report import Row
from bench.suites.common import repeat_row

SUITE = "prune"


def fixture(ctx: Context) -> tuple[Path, dict[str, Any]]:
    """The synthetic volume, built once per bench run."""
    got = ctx.shared.get("catalog")
    if got is None:
        root = ctx.tmpdir("catalog")
        t0 = time.monotonic()
        info = catalogfixture.build(
            root, ctx.opts.catalog_backups, ctx.opts.catalog_wal, ctx.wal_layout_sample
        )
        ctx.log(f"catalog: {info} built in {time.monotonic() - t0:.1f}s")
        got = (root, info)
        ctx.shared["catalog"] = got
    return got


def run(ctx: Context) -> list[Row]:
    tool = "seawall prune --dry-run"
    try:
        root, info = fixture(ctx)
    except ImportError as exc:
        return [
            Row(suite=SUITE, tool=tool, notes=f"skipped: seawall.catalog not importable ({exc})")
        ]
    env = ctx.seawall_env(root, RETENTION_DAYS="7", RETENTION_WEEKS="4", RETENTION_MONTHS="12")
    row = repeat_row(
        SUITE,
        tool,
        lambda i: measure.run([[*ctx.seawall_cmd(), "prune", "--dry-run"]], env=env, timeout=120),
        ctx.opts.repeat,
        rss="root",
        unavailable=ctx.seawall_unavailable("prune"),
    )
    row.notes = "; ".join(
        n for n in (f"{info['backups']} backups, {info['wal_files']} WAL files", row.notes) if n
    )
    return [row]
