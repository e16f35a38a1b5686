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
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

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
