"""``pg_dumpall --globals-only``: roles, role memberships, tablespaces.

A ``pg_dump`` archive does not contain roles, so a restore into a new
cluster needs them stored beside the dump. Reading role passwords needs
superuser (``pg_authid``); a non-superuser backup role falls back to
``--no-role-passwords`` (roles restore without passwords) and says so.
The output is small (kilobytes), so it is captured in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seawall.log import get_logger
from seawall.postgres.tools.base import ConnParams, binary_version, run_tool, tool_error
from seawall.postgres.tools.pg_restore import conninfo_dbname


@dataclass(frozen=True)
class PgDumpAll:
    binary: Path
    conn: ConnParams

    def version(self) -> str:
        return binary_version(self.binary)

    def globals_only(self, dbname: str) -> tuple[bytes, bool]:
        """The globals script and whether role passwords are included."""
        argv = [
            str(self.binary),
            "--globals-only",
            "--no-password",
            "--dbname",
            conninfo_dbname(dbname),
        ]
        env = self.conn.env(dbname=dbname)
        res = run_tool(argv, env=env, check=False)
        if res.returncode == 0:
            return res.stdout, True
        if b"permission denied" in res.stderr:
            get_logger("postgres").warning(
                "pg_dumpall: not allowed to read role passwords (not superuser); "
                "storing roles without passwords"
            )
            res = run_tool([*argv, "--no-role-passwords"], env=env, check=False)
            if res.returncode == 0:
                return res.stdout, False
        raise tool_error("pg_dumpall", res.returncode, res.stderr)
