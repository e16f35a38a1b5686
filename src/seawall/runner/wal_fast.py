"""The WAL hot path: ``seawall postgres wal-push PATH`` / ``wal-fetch NAME DEST``.

``archive_command`` runs once per 16 MiB segment and a slow one fills
``pg_wal`` until the database stops, so this module is reached from
:mod:`seawall.entry` without Typer, pydantic(-settings), psycopg, rich, httpx
or qdrant_client (tests/integration/wal/test_wal_fast_imports.py checks
``sys.modules``). Configuration comes from
:mod:`seawall.postgres.wal.envconfig`, which reads the same variables as
settings.py.

``wal-push`` first tries :mod:`seawall.postgres.wal.fastpush` (a complete
segment into an existing archive, with nothing but the standard library's
core, zstandard's C backend and pyrage imported); anything else, including
every refusal and its message, is :func:`seawall.postgres.wal.push.push_wal`.
``wal-fetch`` likewise tries :mod:`seawall.postgres.wal.fastfetch` (a zstd
segment, age X25519 or plain, from the local repository) before
:func:`seawall.postgres.wal.fetch.fetch_wal`.
Run as a program (``standalone``), a successful push or fetch ends the process with
``os._exit`` once stdout/stderr are flushed: the archived file is already
durable, and tearing down the interpreter and its 16 MiB of buffers only
delays the moment PostgreSQL may archive the next segment.

Exit codes follow :mod:`seawall.errors`; one exception is deliberate:
``wal-fetch`` of a file that is not in the archive exits 1 *quietly*, since
PostgreSQL probes for files that do not exist (history files of future
timelines, the segment after the last one) as part of every recovery.
"""

from __future__ import annotations

import os
import sys

USAGE = (
    "usage: seawall postgres wal-push PATH\n"
    "       seawall postgres wal-fetch NAME DEST\n"
    "(archive_command = 'seawall postgres wal-push %p', "
    "restore_command = 'seawall postgres wal-fetch %f %p')\n"
)


def _err(message: str) -> None:
    sys.stderr.write(f"seawall: error: {message}\n")


def _lean_push(path: str) -> int | None:
    """0 when the lean path archived ``path``; None when push_wal must do it."""
    from seawall.postgres.wal.fastpush import push

    try:
        push(path)
    except OSError as exc:  # writing the archive failed: nothing complete-looking left
        from seawall.storage.base import storage_error

        err = storage_error(exc, f"{os.path.basename(path)} in the WAL archive")
        _err(f"wal-push: {err}")
        return err.exit_code
    except Exception:  # Fallback, or a surprise before anything was written
        return None
    return 0


def _lean_fetch(name: str, dest: str) -> int | None:
    """0 when the lean path restored ``name``, 1 when it is not archived, None: general path."""
    from seawall.postgres.wal.fastfetch import Missing, fetch

    try:
        fetch(name, dest)
    except Missing:
        if os.environ.get("SEAWALL_WAL_FETCH_VERBOSE"):
            _err(f"wal-fetch: {name} is not in the archive")
        return 1
    except Exception:  # Fallback, or a surprise before dest was written
        return None
    return 0


def main(argv: list[str], *, standalone: bool = False) -> int:
    """Run ``wal-push`` or ``wal-fetch``; returns the exit code.

    ``standalone``: this call is the whole process (the console script), so
    a successful ``wal-push`` may end it at once (see the module docstring).
    """
    if not argv or argv[0] not in ("wal-push", "wal-fetch"):
        sys.stderr.write(USAGE)
        return 2
    cmd, args = argv[0], argv[1:]
    if (cmd == "wal-push" and len(args) != 1) or (cmd == "wal-fetch" and len(args) != 2):
        sys.stderr.write(USAGE)
        return 2
    try:
        code = _lean_push(args[0]) if cmd == "wal-push" else _lean_fetch(args[0], args[1])
    except KeyboardInterrupt:
        _err(f"{cmd}: interrupted")
        return 130
    if code == 0 and standalone:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    if code is not None:
        return code
    from pathlib import Path

    from seawall.errors import NotFoundError, SeawallError

    try:
        from seawall.postgres.wal.envconfig import load_wal_config

        cfg = load_wal_config()
        if cmd == "wal-push":
            from seawall.postgres.wal.push import push_wal

            push_wal(cfg, Path(args[0]))
            return 0
        from seawall.postgres.wal.fetch import fetch_wal
        from seawall.storage.repository import require_storage

        # loudly, not the quiet "not archived" exit 1 that ends recovery early
        require_storage(cfg.storage)
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
    except OSError as exc:  # e.g. an archive private to another uid: exit 7, one line
        _err(
            f"{cmd}: cannot access the WAL archive: {exc.strerror or exc}"
            f"{f' ({exc.filename})' if exc.filename else ''}; check BACKUP_DIR is mounted and "
            "that seawall runs as the user owning the archive (the one PostgreSQL runs as)"
        )
        return 7
    except Exception as exc:
        _err(f"{cmd}: internal error: {type(exc).__name__}: {exc}")
        if (
            os.environ.get("SEAWALL_LOG_LEVEL") or os.environ.get("LOG_LEVEL", "")
        ).lower() == "debug":
            import traceback

            traceback.print_exc()
        return 1
