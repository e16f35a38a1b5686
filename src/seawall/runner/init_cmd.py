"""``seawall init``: create a new repository (BACKUP_DIR) on purpose.

Backups create at most the repository's own top directory, and reading
commands refuse a repository that does not exist (an unmounted volume must
not look like an empty one, see :mod:`seawall.storage.repository`). This is
the one command that creates a whole path: the operator asked for it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.runner.common import State, command, print_json, settings


@command
def init(
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create the repository BACKUP_DIR (with parents, mode 0700); harmless if it exists.

    On object storage the bucket must exist; init writes the marker object in it.
    """
    from seawall.storage.factory import open_storage
    from seawall.storage.repository import MARKER, init_storage

    root = settings().repository
    created = init_storage(open_storage(root))
    if json_out:
        marker = f"{root.rstrip('/')}/{MARKER}"
        print_json({"repository": root, "created": created, "marker": marker})
    elif not State.quiet:
        typer.echo(f"{'created' if created else 'already exists:'} repository {root}")
