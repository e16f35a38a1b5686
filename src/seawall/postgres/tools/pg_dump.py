"""``pg_dump``: the custom-format dump, streamed to the pipeline.

We always run ``-Fc -Z0``: custom format so ``pg_restore -j`` and
``pg_restore --list`` work, no compression inside pg_dump because the
pipeline compresses (multithreaded zstd beats pg_dump's single-threaded
gzip by a wide margin). ``--snapshot`` lets the content statistics and the
dump see exactly the same data.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from seawall.postgres.tools.base import ConnParams, binary_version, spawn_tool, tool_error


@dataclass(frozen=True)
class PgDump:
    binary: Path
    conn: ConnParams

    def version(self) -> str:
        return binary_version(self.binary)

    def argv(self, dbname: str, snapshot: str | None = None, data_only: bool = False) -> list[str]:
        args = [str(self.binary), "--format=custom", "--compress=0", "--no-password"]
        if snapshot:
            args.append(f"--snapshot={snapshot}")
        if data_only:
            args.append("--data-only")
        # The database goes in PGDATABASE (see spawn), not --dbname, which would
        # read a name containing "=" as a connection string.
        return args

    def spawn(
        self, dbname: str, snapshot: str | None = None, data_only: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start pg_dump writing the archive to its stdout pipe.

        The pipe is widened to 1 MiB (Linux): pg_dump writes a few KiB at a
        time, and with the default 64 KiB both sides wake each other up 16
        times as often.
        """
        proc = spawn_tool(self.argv(dbname, snapshot, data_only), env=self.conn.env(dbname=dbname))
        if proc.stdout is not None:
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        return proc

    @staticmethod
    def check(proc: subprocess.Popen[bytes]) -> None:
        """Wait for pg_dump and raise a classified error if it failed."""
        stderr = proc.stderr.read() if proc.stderr is not None else b""
        code = proc.wait()
        if code != 0:
            raise tool_error("pg_dump", code, stderr)
