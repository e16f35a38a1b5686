"""``psql``: run plain-SQL scripts (legacy dumps, globals).

Plain SQL dumps (the operators' old ``aidb-full-*.sql.gz``) and
``pg_dumpall --globals-only`` output are scripts, not archives, so they are
replayed with psql. ``ON_ERROR_STOP`` is on for dumps (a half-applied dump
must fail the restore) and off for globals (``role "postgres" already
exists`` is expected in an existing cluster).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from seawall.postgres.tools.base import ConnParams, binary_version, run_tool, tool_error


@dataclass(frozen=True)
class Psql:
    binary: Path
    conn: ConnParams

    def version(self) -> str:
        return binary_version(self.binary)

    def _argv(self, dbname: str, stop_on_error: bool) -> list[str]:
        return [
            str(self.binary),
            "-X",
            "-q",
            "--no-password",
            "-v",
            f"ON_ERROR_STOP={1 if stop_on_error else 0}",
            "-d",
            dbname,
        ]

    def run_file(self, path: Path, dbname: str, *, stop_on_error: bool = True) -> str:
        """Run a script file; returns stderr (warnings/errors when not stopping)."""
        argv = [*self._argv(dbname, stop_on_error), "-f", str(path)]
        res = run_tool(argv, env=self.conn.env(dbname=dbname), check=False)
        if res.returncode != 0:
            raise tool_error("psql", res.returncode, res.stderr)
        return res.stderr.decode(errors="replace")

    def spawn_script(self, dbname: str, *, stop_on_error: bool = True) -> subprocess.Popen[bytes]:
        """psql reading a script from stdin (for streaming a plain dump)."""
        from seawall.postgres.tools.base import spawn_tool

        return spawn_tool(
            self._argv(dbname, stop_on_error),
            env=self.conn.env(dbname=dbname),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )

    @staticmethod
    def check(proc: subprocess.Popen[bytes]) -> None:
        stderr = proc.stderr.read() if proc.stderr is not None else b""
        code = proc.wait()
        if code != 0:
            raise tool_error("psql", code, stderr)
