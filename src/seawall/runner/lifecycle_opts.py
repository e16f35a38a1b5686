"""Options shared by ``pin``, ``unpin`` and ``forget``: which backups are meant.

Not a command: the selector options live here once so the three commands
name series the same way as ``prune`` (``--series`` is the database, cluster
or collection name; ``--engine``/``--kind`` settle an ambiguity).
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

Engine = Annotated[
    Literal["postgres", "qdrant"] | None,
    typer.Option("--engine", help="Only this engine (settles an id or series in both)."),
]
Kind = Annotated[
    str | None,
    typer.Option(
        "--kind",
        help="Only this kind: logical, base, snapshot, shard-snapshot, full-storage.",
    ),
]
Series = Annotated[
    str | None,
    typer.Option(
        "--series",
        "-s",
        "--database",
        "-d",
        "--collection",
        "-c",
        help="The database, cluster or collection (needed for 'latest'); -d/-c as in "
        "`postgres list` / `qdrant list`.",
    ),
]
Ref = Annotated[str, typer.Argument(help="Backup id, or 'latest' with --series.")]
