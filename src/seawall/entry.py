"""Console entry point with a lazy argv dispatcher.

``archive_command`` runs ``seawall postgres wal-push %p`` once per 16 MiB WAL
segment; a slow archive_command fills pg_wal and stops the database. Typer,
pydantic-settings and psycopg together cost ~200 ms to import, so the WAL
hot path (``wal-push`` / ``wal-fetch``) is dispatched here, before any of them
is imported, to a module that needs only the standard library, zstandard and
pyrage. Every other command goes through the Typer app.

When the call is the whole process (the console script, ``python -m
seawall``), it ends with :func:`_exit_now` instead of the interpreter's
teardown, which frees every imported module's objects one by one: ~35 ms
after the work is done and its output flushed, measured between the
manifest's fsync and ``exit_group`` of a backup (a sixth of seawall's fixed
cost on top of pg_dump).
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

    code = run(args)
    if argv is None:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process with ``code`` now, as the interpreter would, minus teardown.

    What an orderly exit does that matters is still done: non-daemon threads
    are waited for (if any is alive, this returns and the normal exit
    handles it), atexit handlers run (logging's flush and close, weakref
    finalizers such as TemporaryDirectory clean-up), stdout and stderr are
    flushed, and output that cannot be written turns success into 120.
    """
    import atexit
    import os
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return None
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            # As the interpreter does: output that could not be written (a
            # full disk under `list --json > file`, a closed pipe) is 120.
            code = code or 120
        except ValueError:  # already closed: nothing buffered to lose
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
