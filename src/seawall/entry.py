"""Console entry point with a lazy argv dispatcher.

``archive_command`` runs ``seawall postgres wal-push %p`` once per 16 MiB WAL
segment; a slow archive_command fills pg_wal and stops the database. Typer,
pydantic-settings and psycopg together cost ~200 ms to import, so the WAL
hot path (``wal-push`` / ``wal-fetch``) is dispatched here, before any of them
is imported, to a module that needs only the standard library, zstandard and
pyrage. Every other command goes through the Typer app.
"""

from __future__ import annotations

import sys

FAST_WAL_COMMANDS = ("wal-push", "wal-fetch")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    fast = len(args) >= 2 and args[0] == "postgres" and args[1] in FAST_WAL_COMMANDS
    if fast and not any(a in ("-h", "--help") for a in args[2:]):
        from seawall.runner.wal_fast import main as wal_main

        # argv None: we are the process (console script, python -m seawall)
        code: int = wal_main(args[1:], standalone=argv is None)
        return code
    from seawall.runner.app import run

    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
