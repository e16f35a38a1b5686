"""Which backups the operator named: an id or ``latest``, narrowed by series.

The same rules as ``postgres verify`` / ``qdrant restore`` (a full id, or
``latest`` with the series named), but across engines: ``pin`` and
``forget`` act on any backup in the catalog. Ambiguity is an error that says
which option settles it, never a guess: these commands keep or delete data.
"""

from __future__ import annotations

from dataclasses import dataclass

from seawall.catalog.models import Manifest
from seawall.context import Context
from seawall.errors import ConfigError, NotFoundError

#: CLI engine names -> catalog directory names
ENGINES = {"postgres": "postgresql", "postgresql": "postgresql", "qdrant": "qdrant"}


@dataclass(frozen=True)
class Selector:
    """Options that narrow the catalog: ``--engine``, ``--kind``, ``--series``."""

    engine: str | None = None  # postgres | qdrant (CLI) or the directory name
    kind: str | None = None
    series: str | None = None

    @property
    def engine_dir(self) -> str | None:
        if self.engine is None:
            return None
        try:
            return ENGINES[self.engine]
        except KeyError:
            raise ConfigError(f"unknown engine {self.engine!r}; use postgres or qdrant") from None

    def matches(self, m: Manifest) -> bool:
        return (
            (self.engine_dir is None or m.engine == self.engine_dir)
            and (self.kind is None or m.kind == self.kind)
            and (self.series is None or m.series == self.series)
        )

    def describe(self) -> str:
        parts = [self.engine_dir or "", self.kind or "", self.series or ""]
        return "/".join(p or "*" for p in parts)


def series_label(m: Manifest) -> str:
    return f"{m.engine}/{m.kind}/{m.series}"


def candidates(ctx: Context, sel: Selector) -> list[Manifest]:
    """Every readable manifest the selector matches, newest first."""
    scan = ctx.catalog.scan(sel.engine_dir, sel.kind if sel.engine_dir else None, sel.series)
    return [m for m in scan.manifests if sel.matches(m)]


def resolve_one(ctx: Context, ref: str, sel: Selector) -> Manifest:
    """``ref`` (an id or ``latest``) -> exactly one manifest, or a clear error."""
    found = candidates(ctx, sel)
    if ref == "latest":
        if sel.series is None:
            raise ConfigError(
                "`latest` needs the series: add --series NAME (the database, cluster or "
                "collection), or give the backup id (`seawall info` lists them)"
            )
        good = [m for m in found if m.ok]
        series = sorted({series_label(m) for m in good})
        if len(series) > 1:
            raise ConfigError(
                f"`latest` of {sel.series!r} is ambiguous ({', '.join(series)}); "
                "add --engine and --kind"
            )
        if not good:
            raise NotFoundError(
                f"no successful backup of {sel.describe()} in {ctx.storage.describe()}; "
                "`seawall info` lists the series"
            )
        return good[0]
    matches = [m for m in found if m.id == ref]
    if not matches:
        raise NotFoundError(
            f"backup {ref!r} not found in {ctx.storage.describe()} ({sel.describe()}); "
            "`seawall info` lists the ids"
        )
    if len(matches) > 1:
        raise ConfigError(
            f"backup id {ref!r} is in several series "
            f"({', '.join(sorted(series_label(m) for m in matches))}); "
            "add --engine, --kind and --series"
        )
    return matches[0]
