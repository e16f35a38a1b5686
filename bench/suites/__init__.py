"""One module per suite; each exposes ``run(ctx) -> list[Row]``."""

from __future__ import annotations
