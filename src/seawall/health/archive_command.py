"""Read an ``archive_command`` the way the shell will: does it call seawall, and where to?

Why parse instead of trusting a probe alone: a WAL switch that never lands
in the archive only says "something is wrong" after a timeout; the command
text usually says *what* (another BACKUP_DIR, another PG_CLUSTER_NAME,
``cp`` instead of seawall) at once. The probe (a real WAL switch) still
decides what the text cannot show: a wrapper script's environment
(docs/wal-archiving.md recommends ``/etc/seawall/wal-push.sh %p``).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

_DIR_VARS = ("SEAWALL_BACKUP_DIR", "BACKUP_DIR")  # SEAWALL_ wins, as in settings.py
_CLUSTER_VARS = ("SEAWALL_PG_CLUSTER_NAME", "PG_CLUSTER_NAME")


@dataclass
class ArchiveCommand:
    """What the command text shows; ``None`` = not visible in the text."""

    text: str
    calls_seawall: bool = False  # a ``seawall`` program followed by ``wal-push``
    mentions_seawall: bool = False  # "seawall" or "wal-push" anywhere (a wrapper?)
    has_placeholder: bool = False  # %p
    backup_dir: str | None = None
    cluster: str | None = None
    assignments: dict[str, str] = field(default_factory=dict)


def _tokens(text: str, depth: int = 0) -> list[str]:
    """Shell words; a quoted script (``sh -c '...'``) is split into its words too."""
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: the shell would refuse it too
        words = [w.strip("'\"") for w in text.split()]
    out: list[str] = []
    for word in words:
        if depth < 2 and any(c.isspace() for c in word):
            out.extend(_tokens(word, depth + 1))
        else:
            out.append(word)
    return out


def parse(text: str) -> ArchiveCommand:
    cmd = ArchiveCommand(text=text, has_placeholder="%p" in text)
    lowered = text.lower()
    cmd.mentions_seawall = "seawall" in lowered or "wal-push" in lowered
    tokens = _tokens(text)
    for i, tok in enumerate(tokens):
        name, eq, value = tok.partition("=")
        if eq and name.isidentifier() and name.isupper():
            cmd.assignments.setdefault(name, value)
        if os.path.basename(tok) == "seawall" or tok.endswith("/seawall"):
            rest = tokens[i + 1 :]
            if "wal-push" in rest:
                cmd.calls_seawall = True
                for j, arg in enumerate(rest):
                    if arg == "--backup-dir" and j + 1 < len(rest):
                        cmd.assignments.setdefault("--backup-dir", rest[j + 1])
                    elif arg.startswith("--backup-dir="):
                        cmd.assignments.setdefault("--backup-dir", arg.split("=", 1)[1])
    for var in ("--backup-dir", *_DIR_VARS):
        if var in cmd.assignments:
            cmd.backup_dir = cmd.assignments[var]
            break
    for var in _CLUSTER_VARS:
        if var in cmd.assignments:
            cmd.cluster = cmd.assignments[var]
            break
    return cmd


def same_dir(a: str, b: str) -> bool:
    """Whether two BACKUP_DIR values name one repository (a path, or an s3:// URL)."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)
