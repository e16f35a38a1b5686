"""Scratch directories in TMPDIR that a killed run does not leave behind for good.

Why: ``verify --deep`` unpacks about a snapshot's size (plus one shard) into
``TMPDIR``, and a restore of an older backup decodes a whole snapshot there.
A run that is killed (SIGKILL, the OOM killer, a deadline) runs no clean-up:
each interrupted run left gigabytes in ``/tmp`` until the disk was full.

How: each directory is named ``seawall-<what>-<host>-<pid>-<random>``. Before
making one, seawall removes the directories of its kind that this host's
processes made and whose process no longer runs. A directory of another host
(a shared ``TMPDIR``) or of a live process is never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from seawall.log import get_logger

log = get_logger("qdrant.scratch")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", os.uname().nodename) or "host"


def sweep(what: str, root: Path | None = None) -> list[Path]:
    """Remove this host's ``seawall-<what>-`` directories whose process is gone."""
    root = Path(root or tempfile.gettempdir())
    pattern = re.compile(rf"^seawall-{re.escape(what)}-{re.escape(_host())}-(\d+)-")
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or _alive(int(m.group(1))) or not entry.is_dir() or entry.is_symlink():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
            log.warning(
                "removed the scratch directory an interrupted seawall run left behind",
                extra={"path": str(entry)},
            )
    return removed


def make(what: str) -> Path:
    """A new scratch directory (the caller removes it); stale ones are swept first."""
    sweep(what)
    return Path(tempfile.mkdtemp(prefix=f"seawall-{what}-{_host()}-{os.getpid()}-"))


@contextlib.contextmanager
def directory(what: str) -> Iterator[Path]:
    """:func:`make`, removed on the way out."""
    path = make(what)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
