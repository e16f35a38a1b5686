"""``seawall qdrant verify``: check Qdrant backups offline (``--deep``: segment data)."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import State, command, print_json, settings


@command
def verify(
    ref: Annotated[
        str, typer.Argument(help="Backup id, `latest` (each collection's newest) or a PATH.")
    ] = "latest",
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Only this collection.")
    ] = None,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also load the segment data with qdrant-edge, compare points count, "
            "run the sample searches (needs seawall[edge]).",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """sha256, decrypt, decompress and the snapshot archive's structure; --deep loads segments.

    Without the decryption identity the 'stored' level runs and says so (stored bytes,
    age header, structure recorded while streaming); --deep then exits 8.
    """
    from seawall.context import Context
    from seawall.errors import DecryptionError, NotFoundError, PartialFailureError, SeawallError
    from seawall.qdrant.select import latest_per_series, resolve
    from seawall.qdrant.verify import verify_backup
    from seawall.runner.verify_level import level_note

    ctx = Context(settings())
    if ref == "latest":
        ctx.require_repository()
        sources = [resolve(ctx, m.id, m.series) for m in latest_per_series(ctx, collection)]
        if not sources:
            raise NotFoundError(
                f"no successful Qdrant backup in {ctx.storage.describe()}; run "
                "`seawall qdrant backup` first or check BACKUP_DIR"
            )
    else:
        sources = [resolve(ctx, ref, collection)]
    errors: list[SeawallError] = []
    out = []
    for source in sources:
        res = verify_backup(
            ctx,
            source.storage,
            source.manifest,
            deep=deep,
            write_back=True,
            in_catalog=source.in_catalog,
        )
        v = res.verification
        out.append(
            {
                "id": source.manifest.id,
                "collection": source.manifest.series,
                **v.model_dump(mode="json"),
            }
        )
        if not json_out and not State.quiet:
            status = (
                "OK"
                if v.ok
                else ("NOT VERIFIED" if isinstance(res.error, DecryptionError) else "FAILED")
            )
            typer.echo(f"{source.label}: {status}: {v.message}")
            if v.ok:
                typer.echo(f"  ({level_note(v)})")
            for line in v.checks:
                typer.echo(f"  - {line}")
            if deep and v.ok:
                typer.echo(
                    "  (deep: the snapshot's segment data was loaded with Qdrant's storage engine)"
                )
        if res.error is not None:
            errors.append(res.error)
    if json_out:
        print_json(out)
    if errors:
        if len(sources) == 1 or len(errors) == len(sources):
            raise errors[0]
        raise PartialFailureError(
            f"{len(errors)} of {len(sources)} Qdrant backups failed verification"
        )
