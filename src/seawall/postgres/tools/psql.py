"""``psql``: run plain-SQL scripts (legacy dumps, globals).

Plain SQL dumps (the operators' old ``aidb-full-*.sql.gz``) and
``pg_dumpall --globals-only`` output are scripts, not archives, so they are
replayed with psql. ``ON_ERROR_STOP`` is on for dumps (a half-applied dump
must fail the restore) and off for globals (``role "postgres" already
exists`` is expected in an existing cluster).
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
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
        ]  # the database goes in PGDATABASE: a name with "=" must not parse as conninfo

    def run_file(self, path: Path, dbname: str, *, stop_on_error: bool = True) -> str:
        """Run a script file; returns stderr (warnings/errors when not stopping)."""
        argv = [*self._argv(dbname, stop_on_error), "-f", str(path)]
        res = run_tool(argv, env=self.conn.env(dbname=dbname), check=False)
        if res.returncode != 0:
            raise tool_error("psql", res.returncode, res.stderr)
        return res.stderr.decode(errors="replace")

    def spawn_script(self, dbname: str, *, stop_on_error: bool = True) -> PsqlScript:
        """psql reading a script from what is written to it (streaming a plain dump)."""
        return PsqlScript(self._argv(dbname, stop_on_error), self.conn.env(dbname=dbname))


class PsqlScript:
    """A running psql fed through :meth:`write`; stderr goes to a temporary
    file (a dump full of NOTICEs must not fill a pipe nobody reads)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err
        )

    def write(self, data: bytes) -> int:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.finish()  # psql stopped (ON_ERROR_STOP): report its error
            raise tool_error("psql", 1, "psql stopped reading the script") from None
        return len(data)

    def finish(self) -> None:
        """Close stdin, wait, raise psql's error if it failed."""
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.proc.stdin.close()
        code = self.proc.wait()
        self._err.seek(0)
        stderr = self._err.read()
        self._err.close()
        if code != 0:
            raise tool_error("psql", code, stderr)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
