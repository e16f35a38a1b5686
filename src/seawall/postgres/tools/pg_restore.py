"""``pg_restore``: list an archive's contents, restore it (in parallel).

``--list`` reads the table of contents, which proves the archive is a
readable custom-format dump; it reads from stdin so verification can stream
the decoded artifact without a temporary file. A parallel restore (``-j``)
needs a seekable file, so restore decodes to a temporary file first.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from seawall.errors import SeawallError, SourceUnavailableError
from seawall.postgres.tools.base import ConnParams, binary_version, run_tool, tool_error


def conninfo_dbname(dbname: str) -> str:
    """``dbname='…'`` so that any database name (even one with ``=``) is taken literally."""
    escaped = dbname.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}'"


class ArchiveLister:
    """Feed an archive to ``pg_restore --list`` through :meth:`write`.

    Output goes to temporary files, not pipes: a large table of contents
    would fill a stdout pipe nobody reads while we are still writing to
    stdin, and both sides would wait forever. pg_restore stops reading after
    the table of contents; later writes are silently dropped so the caller
    can keep decoding (and checking) the rest of the stream.
    """

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=self._out, stderr=self._err
        )
        self.open = True

    def write(self, data: bytes) -> int:
        if self.open and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.open = False
        return len(data)

    def finish(self) -> tuple[int, str, str]:
        """Close stdin, wait; (exit code, stdout, stderr)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.proc.stdin.close()
        code = self.proc.wait()
        texts = []
        for fh in (self._out, self._err):
            fh.seek(0)
            texts.append(fh.read().decode(errors="replace"))
            fh.close()
        return code, texts[0], texts[1]


@dataclass(frozen=True)
class PgRestore:
    binary: Path
    conn: ConnParams

    def version(self) -> str:
        return binary_version(self.binary)

    def lister(self) -> ArchiveLister:
        """``pg_restore --list`` reading the archive from what is written to it."""
        return ArchiveLister([str(self.binary), "--list"], self.conn.env())

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
        no_tablespaces: bool = False,
        no_subscriptions: bool = False,
        no_event_triggers: bool = False,
        exit_on_error: bool = True,
    ) -> None:
        """Restore ``path`` into the existing database ``dbname``.

        ``no_event_triggers`` leaves the archive's event triggers (and their
        comments) out, through an edited ``--use-list``: pg_restore has no
        option for it.
        """
        argv = [
            str(self.binary),
            "--no-password",
            "--dbname",
            conninfo_dbname(dbname),
            f"--jobs={max(jobs, 1)}",
        ]
        if exit_on_error:
            argv.append("--exit-on-error")
        if no_owner:
            argv += ["--no-owner", "--no-privileges"]
        if no_tablespaces:
            argv.append("--no-tablespaces")
        if no_subscriptions:
            argv.append("--no-subscriptions")
        if no_event_triggers:
            listing = path.with_name(path.name + ".list")
            kept = [ln for ln in self.list_file(path).splitlines() if not _EVENT_TRIGGER.match(ln)]
            listing.write_text("\n".join(kept) + "\n")
            argv.append(f"--use-list={listing}")
        argv.append(str(path))
        res = run_tool(argv, env=self.conn.env(dbname=dbname), check=False)
        if res.returncode != 0:
            raise _restore_error(res.returncode, res.stderr)


#: a ``pg_restore --list`` line of an event trigger, or of its comment or label
_EVENT_TRIGGER = re.compile(r"^\d+; \d+ \d+ (?:(?:COMMENT|SECURITY LABEL) - )?EVENT TRIGGER ")


def _restore_error(code: int, stderr: bytes) -> Exception:
    """pg_restore's failure, with the fix when the target lacks a role the
    dump's ownership and grants name (the usual first restore into a fresh
    cluster)."""
    err = tool_error("pg_restore", code, stderr)
    match = re.search(r'ERROR:  role "(.*)" does not exist', stderr.decode(errors="replace"))
    if match and not isinstance(err, SourceUnavailableError):
        return SeawallError(
            f"{err}; the target server lacks the role {match.group(1)!r} the dump's owners or "
            "grants name: restore the roles first (--with-globals) or pass --no-owner"
        )
    return err
