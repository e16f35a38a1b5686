"""Where mirror bookkeeping lives in the primary: stdlib only, for every reader.

Why a module of its own: the mirroring wrapper (storage/mirror.py) writes these
records, ``seawall sync`` consumes them, the exporter counts them (mirror lag)
and the lean ``wal-push`` (stdlib only, no seawall.log) may write them with
plain ``os`` calls. One definition of the layout keeps the four in step.

Layout, in the **primary** repository (never copied to a mirror)::

    mirrors/<mirror id>/pending/<key>   an object the mirror lacks (or holds stale)
    mirrors/<mirror id>/deletes/<key>   a deletion the mirror missed
    mirrors/<mirror id>/down            the mirror failed recently (mtime: when)

Each record's body is one JSON line: ``{"key", "mirror", "what", "since"}``
(``what``: ``copy``, ``delete``, ``delete_tree``, or the error for ``down``).
Lag of a mirror = the number of ``pending`` records (objects) and the age of
the oldest record's mtime (seconds): one listing of that prefix.

The lean ``wal-push`` into a local primary writes its intent records with
:func:`write_local_record` (plain ``os`` calls, the file ``LocalStorage``
would write) before it commits the segment; the copies and the ``down``
marker are then :class:`seawall.storage.mirror.MirroredStorage`'s, as for
every other writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime

from seawall.walcore.layout import PARTIAL_MARKER

#: Top-level prefix of the mirror bookkeeping in the primary (never mirrored itself).
MIRRORS_ROOT = "mirrors"
#: Keys that are per-repository and never copied: bookkeeping and flock lock files.
UNMIRRORED = (f"{MIRRORS_ROOT}/", ".locks/")


def mirror_id(location: str) -> str:
    """A stable, readable id for a mirror location (its record prefix in the primary).

    ``s3://dr-bucket/seawall`` → ``s3-dr-bucket-seawall-1a2b3c4d``: readable in
    ``ls``, unique by the hash suffix, the same in every process. ``location``
    is the normalised form (``str(parse_location(text))``).
    """
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", location).strip("-.")[:48] or "mirror"
    return f"{slug}-{hashlib.sha256(location.encode()).hexdigest()[:8]}"


def pending_prefix(mid: str) -> str:
    """Where the records of objects a mirror misses live in the primary."""
    return f"{MIRRORS_ROOT}/{mid}/pending"


def deletes_prefix(mid: str) -> str:
    """Where the records of deletions a mirror missed live in the primary."""
    return f"{MIRRORS_ROOT}/{mid}/deletes"


def down_marker(mid: str) -> str:
    """The record, in the primary, that a mirror failed recently (its mtime says when)."""
    return f"{MIRRORS_ROOT}/{mid}/down"


def is_mirrored_key(key: str) -> bool:
    """Whether ``key`` is repository content (copied to mirrors) rather than bookkeeping."""
    return not key.startswith(UNMIRRORED)


def record(key: str, location: str, what: str) -> bytes:
    """The body of a record (one JSON line)."""
    body = {
        "key": key,
        "mirror": location,
        "what": what,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return (json.dumps(body) + "\n").encode()


def write_local_record(root: str, rkey: str, body: bytes) -> bool:
    """Write the record ``rkey`` in the local primary at ``root`` unless it is there already.

    Returns whether it wrote one (an existing record is kept: the mirror has
    lagged since its mtime). The file is the one ``LocalStorage.write_bytes``
    leaves: 0600 in 0700 directories, a ``.partial-`` temporary (listings
    skip it) fsynced and renamed, the directory fsynced, so ``seawall sync``,
    ``status`` and the exporter cannot tell which writer made it. Raises
    OSError when it cannot be written.
    """
    path = f"{root}/{rkey}"
    if os.path.isfile(path):
        return False
    directory = os.path.dirname(path)
    missing = []
    cur = directory
    while not os.path.isdir(cur):
        missing.append(cur)
        cur = os.path.dirname(cur)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            if not os.path.isdir(d):
                raise
    tmp = f"{path}{PARTIAL_MARKER}{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return True
