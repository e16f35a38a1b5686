"""``seawall backup``: back up every configured engine at once, one exit code.

The operators' request is "back up PostgreSQL and Qdrant in parallel": the
engines listed in ``ENGINES``, or when it is unset every engine whose
connection is configured (:meth:`Settings.active_engines`: Qdrant when
``QDRANT_URL``/``QDRANT_HOST``/… is set, PostgreSQL unless only Qdrant is),
run concurrently in threads, each with its own series locks, and the command
prints one summary and returns one exit code: 0 when everything succeeded,
10 (partial) when some series failed, the single error's own code when only
one series was attempted, 1 when everything failed.

The engines are imported lazily so that a missing optional engine cannot
break the other one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from seawall.runner.common import (
    MaxRate,
    State,
    VerifyAfter,
    command,
    print_json,
    rate_override,
    settings,
)
from seawall.units import human_size

if TYPE_CHECKING:
    from seawall.context import Context


@dataclass
class Outcome:
    engine: str
    series: str
    backup_id: str | None = None
    stored_size: int | None = None
    seconds: float | None = None
    error: Exception | None = None


def _postgres(ctx: Context, verify: bool | None) -> list[Outcome]:
    from seawall.app.backup import backup_database
    from seawall.errors import SeawallError

    out: list[Outcome] = []
    for db in ctx.settings.target_databases():
        try:
            res = backup_database(ctx, db, verify=verify)
        except SeawallError as exc:
            out.append(Outcome("postgresql", db, error=exc))
            continue
        m = res.manifest
        if res.verified is False:
            from seawall.errors import VerificationError

            out.append(
                Outcome(
                    "postgresql",
                    db,
                    m.id,
                    m.stored_size,
                    m.duration_seconds,
                    VerificationError(f"{db}: verification right after the backup failed"),
                )
            )
            continue
        out.append(Outcome("postgresql", db, m.id, m.stored_size, m.duration_seconds))
    return out


def _qdrant(ctx: Context, verify: bool | None) -> list[Outcome]:
    from seawall.app.backup import qdrant_backup
    from seawall.errors import SeawallError

    try:
        run = qdrant_backup(ctx, verify=verify)
    except SeawallError as exc:  # server down, key rejected: the whole engine failed
        return [Outcome("qdrant", "*", error=exc)]
    return [
        Outcome(
            "qdrant",
            r.collection,
            r.manifest.id if r.manifest else None,
            r.manifest.stored_size if r.manifest else None,
            r.manifest.duration_seconds if r.manifest else None,
            r.error,
        )
        for r in run.results
    ]


ENGINES = {"postgres": _postgres, "qdrant": _qdrant}


@command
def backup_all(
    verify: VerifyAfter = None,
    max_rate: MaxRate = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Back up every configured engine (or those in ENGINES) concurrently; one summary."""
    from seawall.context import Context
    from seawall.errors import BackupFailedError, PartialFailureError, SeawallError

    ctx = Context(settings(**rate_override(max_rate)))
    ctx.ensure_repository()
    # build shared objects once, before the threads race for them
    _ = (ctx.storage, ctx.catalog, ctx.spec)
    engines = ctx.settings.active_engines()
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=len(engines), thread_name_prefix="engine") as pool:
        futures = {name: pool.submit(ENGINES[name], ctx, verify) for name in engines}
        for name, future in futures.items():
            try:
                outcomes.extend(future.result())
            except Exception as exc:  # an engine crashed: report it, keep the others
                outcomes.append(Outcome(name, "*", error=exc))
    failed = [o for o in outcomes if o.error is not None]
    if json_out:
        print_json(
            [
                {
                    "engine": o.engine,
                    "series": o.series,
                    "ok": o.error is None,
                    "backup_id": o.backup_id,
                    "stored_size": o.stored_size,
                    "duration_seconds": o.seconds,
                    "error": str(o.error) if o.error else None,
                }
                for o in outcomes
            ]
        )
    elif not State.quiet:
        for o in outcomes:
            if o.error is None:
                typer.echo(
                    f"{o.engine:<10} {o.series!r}: ok, backup {o.backup_id}, "
                    f"{human_size(o.stored_size)} in {o.seconds or 0:.1f}s"
                )
            else:
                typer.echo(f"{o.engine:<10} {o.series!r}: FAILED: {o.error}")
        skipped = [e for e in ENGINES if e not in engines]
        note = f"; not configured: {', '.join(skipped)}" if skipped else ""
        typer.echo(
            f"{len(outcomes) - len(failed)} of {len(outcomes)} backups succeeded "
            f"(engines: {', '.join(engines)}{note})"
        )
    if not failed:
        return
    if len(outcomes) == 1 and isinstance(failed[0].error, SeawallError):
        raise failed[0].error
    names = ", ".join(f"{o.engine} {o.series!r}" for o in failed)
    if len(failed) < len(outcomes):
        raise PartialFailureError(f"{len(failed)} of {len(outcomes)} backups failed: {names}")
    raise BackupFailedError(f"all {len(outcomes)} backups failed: {names}")
