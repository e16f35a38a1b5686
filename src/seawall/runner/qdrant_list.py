"""``seawall qdrant list``: Qdrant backups in the catalog, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.catalog.models import Manifest
from seawall.context import Context
from seawall.runner.common import command, print_json, settings
from seawall.units import human_size


@command
def list_backups(
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Only this collection.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List Qdrant backups (collection, shard and full-storage snapshots)."""
    ctx = Context(settings())
    ctx.require_repository()
    scan = ctx.catalog.scan("qdrant")
    manifests = [m for m in scan.manifests if collection is None or m.series == collection]
    tiers = _tiers(ctx, manifests)
    if json_out:
        print_json(
            {
                "backups": [
                    {**m.model_dump(mode="json"), "tiers": tiers.get(m.id, [])} for m in manifests
                ],
                "errors": scan.errors,
            }
        )
        return
    if not manifests:
        typer.echo(f"no Qdrant backups in {ctx.storage.describe()}")
    from seawall.catalog.models import utcnow

    now = utcnow()
    for m in manifests:
        verified = "-" if m.verification is None else ("ok" if m.verification.ok else "FAILED")
        if m.verification is not None and m.verification.ok:
            level = m.verification.effective_level
            verified = {"deep": "deep-ok", "stored": "stored-ok"}.get(level, "ok")
        points = m.qdrant.points_count if m.qdrant and m.qdrant.points_count is not None else "-"
        typer.echo(
            f"{m.id}  {m.status:<7}  {m.kind:<14}  {m.series!r:<24}  "
            f"{human_size(m.stored_size):>10}  points {points!s:>8}  verified {verified}"
            + (f"  tiers {','.join(tiers[m.id])}" if tiers.get(m.id) else "")
            + (f"  {m.pin.describe(now)}" if m.pin else "")
            + (f"  error: {m.error}" if m.error else "")
        )
    for err in scan.errors:
        typer.echo(f"seawall: warning: {err}", err=True)


def _tiers(ctx: Context, manifests: list[Manifest]) -> dict[str, list[str]]:
    """Retention tiers per backup id, from the same decision prune makes."""
    from seawall.app.prune import decide
    from seawall.catalog.models import utcnow

    if not manifests:
        return {}
    try:
        decision = decide(ctx, manifests, utcnow())
    except Exception:  # an invalid policy must not hide the list
        return {}
    return {v.entry.id: list(v.tiers) for v in decision.verdicts}
