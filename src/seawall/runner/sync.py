"""``seawall sync``: copy to each mirror what it misses (after an outage), checked."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import command, print_json, settings
from seawall.units import human_size


@command
def sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be copied, copy nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also read every copy the mirror holds and copy again those whose sha256 "
            "is wrong (a byte rotted at rest); reads the whole mirror.",
        ),
    ] = False,
) -> None:
    """Copy to every mirror (MIRRORS) what it misses; manifests last, sha256 checked.

    With --deep every copy the mirror already holds is read and a damaged
    one (sha256 wrong: rotted at rest) copied again. Exit 0 when every mirror is complete; 7 when a mirror could not be
    reached or written; 3 when a primary copy failed its sha256 check (it is
    not copied); 2 when MIRRORS is not set.
    """
    from seawall.app.sync import sync as run_sync
    from seawall.context import Context
    from seawall.errors import ConfigError, StorageError, VerificationError
    from seawall.storage.mirror import MirroredStorage

    ctx = Context(settings())
    repo = ctx.storage
    if not isinstance(repo, MirroredStorage):
        raise ConfigError(
            "MIRRORS is not set: there is nothing to sync to (docs/object-storage.md)"
        )
    reports = run_sync(repo.primary, repo.mirrors, dry_run=dry_run, deep=deep)
    if as_json:
        print_json({"dry_run": dry_run, "mirrors": [r.to_dict() for r in reports]})
    else:
        verb = "would copy" if dry_run else "copied"
        for r in reports:
            typer.echo(f"mirror {r.location} ({r.id}):")
            if not r.reachable:
                typer.echo(f"  unreachable: {r.failed[0]['error']}")
                continue
            for d in r.damaged:
                typer.echo(f"  DAMAGED    {d['key']}: {d['error']}")
            for c in r.copied:
                typer.echo(f"  {verb:<10} {c['key']} ({human_size(c['size'])})")
            for key in r.deleted:
                typer.echo(f"  {'would delete' if dry_run else 'deleted':<10} {key}")
            for f in r.failed:
                typer.echo(f"  FAILED     {f['key']}: {f['error']}")
            for key in r.only_in_mirror:
                typer.echo(f"  only here  {key} (the primary lacks it; kept, not deleted)")
            for key in r.held_back:
                typer.echo(f"  held back  {key} (an artifact of this backup was not copied)")
            total = sum(int(c["size"]) for c in r.copied)
            state = "complete" if r.complete else "INCOMPLETE"
            typer.echo(
                f"  {verb} {len(r.copied)} objects ({human_size(total)}), "
                f"{len(r.deleted)} deletions"
                + (f", {len(r.damaged)} damaged copies found" if deep else "")
                + f"; mirror {state}"
            )
    failures = [f for r in reports for f in r.failed]
    if dry_run or not (failures or any(not r.complete for r in reports)):
        return
    first = failures[0] if failures else {"key": "", "error": "held back"}
    message = (
        f"sync left {len(failures)} object(s) uncopied; first: {first['key']}: {first['error']}"
    )
    if any(f.get("kind") == "verification" for f in failures):
        raise VerificationError(message)
    raise StorageError(message)
