"""Layout of the WAL archive in the repository: names and rules, no I/O.

::

    postgresql/wal/<cluster>/archive.json                      system id, segment size
    postgresql/wal/<cluster>/<TTTTTTTTLLLLLLLL>/<walname>-<sha>.<zst|gz>[.age]
    postgresql/wal/<cluster>/history/<TTTTTTTT>.history-<sha>.<zst|gz>[.age]

``<sha>`` is the first 40 hex digits of the sha256 of the *raw* WAL file (as
pgBackRest does with sha1). The name alone therefore tells (a) which segment
it is, (b) how to decode it, and (c) what its content must hash to after
decoding, so ``wal-fetch`` checks integrity without any other metadata, and
``wal-push`` detects "same segment, different content" by listing one
directory (under the name's claim, ``<walname>`` + :data:`CLAIM_SUFFIX`, an
exclusive flock: ADR 0008). The 16-hex sub-directories keep each directory
at 256 segments per 4 GiB of WAL (a flat directory of 100,000 files is slow
to list).

Why this module imports nothing: the lean ``wal-push``/``wal-fetch`` run
once per 16 MiB segment and import it, so it uses plain string operations
(no ``re``, no ``dataclasses``). The full parser of archived names
(:func:`seawall.walcore.archived.parse_wal_key`) and of WAL names
(:mod:`seawall.walcore.names`) agree with the checks here
(tests/unit/test_walcore_layout.py). Keys with the cluster's encoded name
(``wal_prefix`` …) are built in :mod:`seawall.catalog.wal_layout`, which
owns the encoding of series names.
"""

from __future__ import annotations

WAL_ROOT = "postgresql/wal"
ARCHIVE_INFO = "archive.json"
#: hex digits of the raw file's sha256 in an archived name
SHA_LEN = 40
#: the sub-directory of ``.history`` files (segments go by their first 16 hex digits)
HISTORY_DIR = "history"
#: Marker of an unfinished write in the repository: ``<final name>.partial-<8 hex>``.
#: A storage concept, declared here because the lean wal-push writes its
#: temporaries on the local volume without importing the storage layer
#: (``seawall.storage.base.PARTIAL_MARKER`` is this constant); listings skip
#: such names and prune removes stale ones.
PARTIAL_MARKER = ".partial-"
#: ``<walname><CLAIM_SUFFIX>`` is wal-push's per-name lock file (ADR 0008). It
#: ends like a temporary (``storage.base.is_partial_name``): listings skip it,
#: and one left behind by a kill -9 is reused by the next push or removed by prune.
CLAIM_SUFFIX = ".claim" + PARTIAL_MARKER + "00000000"
#: zstd level of archived WAL when COMPRESSION_LEVEL is not set (both pushes)
WAL_ZSTD_LEVEL = 1
#: what may follow ``<walname>-<sha>``: compression, then encryption
ARCHIVED_SUFFIXES = frozenset({"", ".zst", ".gz", ".age", ".zst.age", ".gz.age"})

_UPPER_HEX = frozenset("0123456789ABCDEF")
_LOWER_HEX = frozenset("0123456789abcdef")


def is_hex(text: str, upper: bool = True) -> bool:
    """Non-empty and only hex digits of one case (PostgreSQL's names: upper; sha: lower)."""
    alphabet = _UPPER_HEX if upper else _LOWER_HEX
    return bool(text) and all(c in alphabet for c in text)


def is_segment_name(name: str) -> bool:
    """A plain segment name: 24 upper-case hex digits (timeline 0 included: see names)."""
    return len(name) == 24 and is_hex(name)


def is_history_name(name: str) -> bool:
    """``TTTTTTTT.history``."""
    return len(name) == 16 and name.endswith(".history") and is_hex(name[:8])


def subdir(walname: str) -> str:
    """The directory of ``walname`` below the cluster's archive root."""
    return HISTORY_DIR if walname.endswith(".history") else walname[:16]


def archived_name(walname: str, raw_sha256: str, suffix: str) -> str:
    """``<walname>-<sha40><suffix>``: the file name an archived WAL file gets."""
    return f"{walname}-{raw_sha256[:SHA_LEN]}{suffix}"


def is_version_of(entry: str, walname: str) -> bool:
    """Whether directory entry ``entry`` is an archived version of ``walname``.

    ``<walname>-`` then 40 lower-case hex digits then one of
    :data:`ARCHIVED_SUFFIXES`: temporaries and claim files never match.
    """
    prefix = f"{walname}-"
    if not entry.startswith(prefix):
        return False
    sha = entry[len(prefix) : len(prefix) + SHA_LEN]
    return (
        len(sha) == SHA_LEN
        and is_hex(sha, upper=False)
        and entry[len(prefix) + SHA_LEN :] in ARCHIVED_SUFFIXES
    )


def sha_of(entry: str, walname: str) -> str:
    """The 40 hex digits of an archived version of ``walname`` (see :func:`is_version_of`)."""
    start = len(walname) + 1
    return entry[start : start + SHA_LEN]


def info_field(text: str, field: str) -> str | None:
    """The scalar value of a top-level ``"field":`` of ``archive.json``, if plain.

    Not a JSON parser (the lean path does not import ``json``): it accepts
    only one occurrence and a plain string or integer of digits, as
    :meth:`seawall.walcore.archive_info.ArchiveInfo.to_json` writes them.
    Anything else returns None and the general path (``json.loads``)
    decides; a caller only ever *confirms* a match with it.
    """
    token = f'"{field}":'
    at = text.find(token)
    if at < 0 or text.find(token, at + 1) >= 0:
        return None
    rest = text[at + len(token) :].lstrip(" ")
    if rest.startswith('"'):
        end = rest.find('"', 1)
        value = rest[1:end] if end > 0 else ""
    else:
        end = 0
        while end < len(rest) and rest[end].isdigit():
            end += 1
        value = rest[:end]
    return value if value.isdigit() else None
