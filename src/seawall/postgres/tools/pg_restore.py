"""``pg_restore``: list an archive's contents, restore it (in parallel).

``--list`` reads the table of contents, which proves the archive is a
readable custom-format dump; it reads from stdin so verification can stream
the decoded artifact without a temporary file. A parallel restore (``-j``)
needs a seekable file, so restore decodes to a temporary file first.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from seawall.postgres.tools.base import (
    ConnParams,
    binary_version,
    run_tool,
    spawn_tool,
    tool_error,
)


@dataclass(frozen=True)
class PgRestore:
    binary: Path
    conn: ConnParams

    def version(self) -> str:
        return binary_version(self.binary)

    def spawn_list(self) -> subprocess.Popen[bytes]:
        """``pg_restore --list`` reading the archive from stdin."""
        return spawn_tool(
            [str(self.binary), "--list"],
            env=self.conn.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def list_file(self, path: Path) -> str:
        res = run_tool([str(self.binary), "--list", str(path)], env=self.conn.env())
        return res.stdout.decode(errors="replace")

    def restore(
        self,
        path: Path,
        dbname: str,
        *,
        jobs: int = 1,
        no_owner: bool = False,
        exit_on_error: bool = True,
    ) -> None:
        """Restore ``path`` into the existing database ``dbname``."""
        argv = [str(self.binary), "--no-password", "--dbname", dbname, f"--jobs={max(jobs, 1)}"]
        if exit_on_error:
            argv.append("--exit-on-error")
        if no_owner:
            argv += ["--no-owner", "--no-privileges"]
        argv.append(str(path))
        res = run_tool(argv, env=self.conn.env(dbname=dbname), check=False)
        if res.returncode != 0:
            raise tool_error("pg_restore", res.returncode, res.stderr)
