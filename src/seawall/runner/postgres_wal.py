"""Typer-side help for ``wal-push`` / ``wal-fetch``.

The real commands never reach Typer: :mod:`seawall.entry` sends them to
:mod:`seawall.runner.wal_fast` before Typer is imported (archive_command runs
once per WAL segment). These stubs exist so that ``seawall postgres --help``
lists them and ``seawall postgres wal-push --help`` explains them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def wal_push(
    path: Annotated[Path, typer.Argument(help="The WAL file, as PostgreSQL's %p.")],
) -> None:
    """Archive one WAL file: archive_command = 'seawall postgres wal-push %p'.

    Compresses and encrypts (COMPRESSION, ENCRYPTION, ENCRYPTION_RECIPIENTS) into
    BACKUP_DIR/postgresql/wal/<PG_CLUSTER_NAME>/, durably (fsync) before exiting 0.
    The same file pushed twice is fine; a different file under the same name is
    refused (exit 9) and nothing is overwritten, also when both pushes run at the
    same moment (one wins); a segment of another cluster (system identifier) or a
    file that is not WAL is refused (exit 9).
    """
    from seawall.runner.wal_fast import main

    raise typer.Exit(main(["wal-push", str(path)]))


def wal_fetch(
    name: Annotated[str, typer.Argument(help="WAL file name, as PostgreSQL's %f.")],
    dest: Annotated[Path, typer.Argument(help="Where to write it, as PostgreSQL's %p.")],
) -> None:
    """Restore one WAL file: restore_command = 'seawall postgres wal-fetch %f %p'.

    Decrypts (ENCRYPTION_IDENTITY[_FILE]), decompresses and checks the sha256 recorded
    in the archived name, then writes DEST atomically. A file that is not archived
    exits 1 quietly (PostgreSQL asks for files that do not exist); a corrupt one
    exits non-zero with a message on stderr.
    """
    from seawall.runner.wal_fast import main

    raise typer.Exit(main(["wal-fetch", name, str(dest)]))
