"""Typed wrapper of ``tar -x``: unpack a base backup's tar stream into a directory.

A base backup is one tar stream (``pg_basebackup -Ft``); ``pitr-restore``
unpacks it into the new data directory and ``verify --deep`` into a scratch
directory, both feeding the decoded stream to tar's stdin as it is decoded
(nothing is staged on disk first). tar gets :func:`child_env` like every
other child: nothing of seawall's environment (no key, no password).

Reading: the caller writes to :attr:`TarExtract.stdin`; :meth:`finish`
closes it and returns tar's exit status and stderr, which the caller turns
into its own error (a restore and a verification say different things
about the same failure).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

from seawall.postgres.tools.base import child_env


class TarExtract:
    """A running ``tar -x -f - -C DEST`` reading the stream written to :attr:`stdin`."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._proc = subprocess.Popen(
            ["tar", "-x", "-f", "-", "-C", str(dest)],
            env=child_env(),
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._proc.stdin is not None
        self.stdin: IO[bytes] = self._proc.stdin

    def finish(self) -> tuple[int, str]:
        """Close tar's input, wait for it: (exit status, its stderr)."""
        self.stdin.close()
        err = self._proc.stderr.read() if self._proc.stderr is not None else b""
        rc = self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        return rc, err.decode(errors="replace")


def extract_tar(dest: Path) -> TarExtract:
    """Start ``tar`` unpacking its stdin into ``dest`` (which must exist)."""
    return TarExtract(dest)
