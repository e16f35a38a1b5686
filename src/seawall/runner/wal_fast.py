"""The WAL hot path: ``seawall postgres wal-push PATH`` / ``wal-fetch NAME DEST``.

``archive_command`` runs once per 16 MiB segment and a slow one fills
``pg_wal`` until the database stops, so this module is reached from
:mod:`seawall.entry` without Typer, pydantic(-settings), psycopg, rich, httpx
or qdrant_client (tests/integration/wal/test_wal_fast_imports.py checks
``sys.modules``). Configuration comes from
:mod:`seawall.postgres.wal.envconfig`, which reads the same variables as
settings.py.

Exit codes follow :mod:`seawall.errors`; one exception is deliberate:
``wal-fetch`` of a file that is not in the archive exits 1 *quietly*, since
PostgreSQL probes for files that do not exist (history files of future
timelines, the segment after the last one) as part of every recovery.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

USAGE = (
    "usage: seawall postgres wal-push PATH\n"
    "       seawall postgres wal-fetch NAME DEST\n"
    "(archive_command = 'seawall postgres wal-push %p', "
    "restore_command = 'seawall postgres wal-fetch %f %p')\n"
)


def _err(message: str) -> None:
    sys.stderr.write(f"seawall: error: {message}\n")


def main(argv: list[str]) -> int:
    """Run ``wal-push`` or ``wal-fetch``; returns the exit code."""
    if not argv or argv[0] not in ("wal-push", "wal-fetch"):
        sys.stderr.write(USAGE)
        return 2
    cmd, args = argv[0], argv[1:]
    if (cmd == "wal-push" and len(args) != 1) or (cmd == "wal-fetch" and len(args) != 2):
        sys.stderr.write(USAGE)
        return 2
    from seawall.errors import NotFoundError, SeawallError

    try:
        from seawall.postgres.wal.envconfig import load_wal_config

        cfg = load_wal_config()
        if cmd == "wal-push":
            from seawall.postgres.wal.push import push_wal

            push_wal(cfg, Path(args[0]))
            return 0
        from seawall.postgres.wal.fetch import fetch_wal

        try:
            fetch_wal(cfg, args[0], Path(args[1]))
        except NotFoundError:
            if os.environ.get("SEAWALL_WAL_FETCH_VERBOSE"):
                _err(f"wal-fetch: {args[0]} is not in the archive")
            return 1
        return 0
    except SeawallError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err(f"{cmd}: interrupted")
        return 130
    except Exception as exc:
        _err(f"{cmd}: internal error: {type(exc).__name__}: {exc}")
        return 1
