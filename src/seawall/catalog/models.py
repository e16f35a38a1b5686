"""Manifest models: what a restore and a verification need, as data.

A manifest is the only proof that a backup exists. It is JSON (readable with
``cat`` during a disaster), carries ``format_version`` so later seawall
versions can read old volumes, and records everything needed to restore and
to check a restore: artifacts with their sha256 over the *stored* bytes, the
decode chain (compression, encryption), tool and server versions, engine
facts (system identifier, LSNs, Qdrant collection config) and content
statistics taken at backup time.

Unknown fields are kept (``extra="allow"``) so an older seawall reading a newer
manifest does not silently drop information when it rewrites it (verification
results are written back into the manifest).

Format version rule: a new *optional* field (with a default that means "not
recorded", e.g. ``Artifact.stream_check``, ``Verification.level``) keeps
``FORMAT_VERSION``: older seawall versions keep it through ``extra="allow"``
and newer ones read old manifests with the default. Removing a field, making
one required or changing what an existing field means raises
``FORMAT_VERSION`` (and old seawall versions then refuse the manifest instead
of misreading it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The newest manifest format this seawall reads. A manifest is written with
#: the lowest version whose readers handle it safely: 1, or 2 while it carries
#: a pin (a seawall that ignores pins would prune the backup, so it must refuse
#: the manifest instead; docs/adr/0009-pins-in-the-manifest.md), or 3 while
#: it lists tablespaces (a seawall that ignores them would restore the main
#: data directory alone, its tablespace_map pointing the restored server at
#: the source's own tablespace directories: docs/adr/0019).
FORMAT_VERSION = 3
PLAIN_FORMAT_VERSION = 1
PINNED_FORMAT_VERSION = 2
TABLESPACE_FORMAT_VERSION = 3
MANIFEST_NAME = "manifest.json"

Engine = Literal["postgresql", "qdrant"]
Status = Literal["running", "success", "failed"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Encryption(_Model):
    """How an artifact is encrypted. Fingerprints only, never key material."""

    format: Literal["age"] = "age"
    mode: Literal["x25519", "scrypt"]
    recipient_fingerprints: list[str] = Field(default_factory=list)


class StreamCheck(_Model):
    """The structure of the raw stream as it was parsed while being written.

    Recorded at backup time (before compression and encryption) so that a
    verification on a host without the decryption identity can still say
    what was in the bytes it can only check by sha256: the pg_dump archive
    header and table of contents read to the last block, or a tar read
    header by header to its end-of-archive marker.
    """

    format: str  # "pg_dump custom archive" | "tar"
    ok: bool
    detail: str


class Artifact(_Model):
    """One stored file of a backup and how to turn it back into raw bytes."""

    name: str  # file name inside the backup directory
    role: str  # dump | globals | base | snapshot | wal
    stored_size: int
    raw_size: int
    sha256: str  # of the stored bytes (after compression and encryption)
    raw_sha256: str | None = None  # of the raw bytes, when known
    compression: Literal["zstd", "gzip", "none"]
    encryption: Encryption | None = None
    content_type: str = "application/octet-stream"
    #: what the stream's structure was while it was written; None: not parsed
    #: (older manifests, plain text artifacts such as globals.sql)
    stream_check: StreamCheck | None = None


#: How far a verification went, weakest first:
#:
#: ``stored``  no decryption key needed: the stored bytes re-read from disk
#:             against the sha256 and size recorded while writing, the age
#:             header's stanzas against the recorded recipients, the age
#:             payload's chunk framing, and the stream structure recorded at
#:             backup time (``Artifact.stream_check``);
#: ``decoded`` also decrypted and decompressed, the raw bytes hashed and
#:             their structure read again (pg_restore --list, tar, snapshot
#:             archive);
#: ``deep``    also restored for real (scratch database, pg_verifybackup with
#:             the WAL, qdrant-edge) and compared with the backup's statistics.
VerificationLevel = Literal["stored", "decoded", "deep"]


class Verification(_Model):
    """The latest verification of a backup, written back into its manifest."""

    at: datetime
    ok: bool
    deep: bool
    #: None in manifests written before levels existed: read it through
    #: :attr:`effective_level` ("deep" if ``deep`` else "decoded")
    level: VerificationLevel | None = None
    duration_seconds: float
    message: str
    checks: list[str] = Field(default_factory=list)
    #: what the verification could not decide, one line each ("table x: why");
    #: never a failure: the backup keeps its status
    undecided: list[str] = Field(default_factory=list)

    @property
    def effective_level(self) -> VerificationLevel:
        if self.level is not None:
            return self.level
        return "deep" if self.deep else "decoded"


class TableStats(_Model):
    """Row count and a cheap content checksum of one table (see ContentStats.checksum_method)."""

    rows: int
    checksum: str | None = None
    #: the column order the checksum was computed in (stats format 2): a
    #: restore may recreate a table with another order (inheritance children,
    #: children of typed tables), so verify computes the restored copy's
    #: checksum in this order rather than the restored one
    columns: list[str] | None = None


class ContentStats(_Model):
    """Content statistics of a database, taken in the dump's snapshot."""

    tables: dict[str, TableStats] = Field(default_factory=dict)
    sequences: dict[str, int | None] = Field(default_factory=dict)
    large_objects: int = 0
    snapshot: str | None = None
    # How the per-table checksums were computed; None (older manifests) means
    # the SQL scan ``sum(hashtextextended(row::text, 0))``.
    checksum_method: str | None = None
    #: 1: checksums in the table's own column order, which a restore may
    #: change (verify cannot decide such tables); 2: ``TableStats.columns``
    #: records the order they were computed in; 3: table and sequence keys
    #: quote a name part holding a dot or a quote (``"a.b".c`` and
    #: ``a."b.c"`` were both ``a.b.c``: postgres/logical/relkey.py)
    format: int = 1


#: the content statistics format new backups write (see ContentStats.format)
STATS_FORMAT = 3


class Tablespace(_Model):
    """A tablespace of a base backup: stored as its own artifact (a tar of
    the tablespace directory's contents), restored to ``location`` or to
    where ``--tablespace-mapping`` sends it."""

    oid: int
    name: str
    #: the directory on the source server (pg_tablespace_location)
    location: str
    #: the artifact holding it (role ``tablespace``)
    artifact: str


class PostgresInfo(_Model):
    """PostgreSQL facts a restore needs."""

    server_version: str | None = None
    server_version_num: int | None = None
    database: str | None = None
    #: the database's encoding (logical backups): verify --deep restores into
    #: a scratch database of the same encoding, so the checksums compare bytes
    #: in the same encoding
    encoding: str | None = None
    #: the database's locale (logical backups): a restore creates the target
    #: from template0 with the same encoding, LC_COLLATE, LC_CTYPE and locale
    #: provider, not the target cluster's defaults (None: not recorded, by
    #: seawall before 2026-12, or a server older than the field)
    lc_collate: str | None = None
    lc_ctype: str | None = None
    locale_provider: Literal["libc", "icu", "builtin"] | None = None
    icu_locale: str | None = None
    icu_rules: str | None = None
    builtin_locale: str | None = None
    system_identifier: str | None = None
    timeline: int | None = None
    start_lsn: str | None = None
    stop_lsn: str | None = None
    start_wal: str | None = None
    stop_wal: str | None = None
    wal_segment_size: int | None = None
    stats: ContentStats | None = None
    #: a base backup's tablespaces besides pg_default/pg_global (None or
    #: empty: the cluster had none)
    tablespaces: list[Tablespace] | None = None


class QdrantInfo(_Model):
    """Qdrant facts a restore needs."""

    version: str | None = None
    collection: str | None = None
    config: dict[str, Any] | None = None
    points_count: int | None = None
    shards: list[dict[str, Any]] = Field(default_factory=list)
    snapshot_name: str | None = None
    snapshot_checksum: str | None = None
    sample: dict[str, Any] | None = None
    #: aliases pointing to the collection at backup time (None: not recorded);
    #: Qdrant keeps them outside collection snapshots (qdrant/aliases.py)
    aliases: list[str] | None = None
    #: payload indexes at backup time (field -> PayloadIndexInfo as Qdrant
    #: reported it; None: not recorded): a cluster restore that must create the
    #: collection creates them again (qdrant/recreate.py)
    payload_schema: dict[str, Any] | None = None


class Pin(_Model):
    """An operator's "keep this backup": retention never drops it while active.

    ``until`` (UTC) ends the pin: from then on the backup is retained like any
    other. The note says why (a migration, a legal hold) for whoever lists it.
    """

    at: datetime
    note: str | None = None
    until: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def describe(self, now: datetime) -> str:
        """``pinned``, ``pinned until …: note`` or ``pin expired …`` for listings."""
        if not self.active(now):
            assert self.until is not None
            return f"pin expired {self.until.isoformat(timespec='seconds')}"
        text = "pinned"
        if self.until is not None:
            text += f" until {self.until.isoformat(timespec='seconds')}"
        if self.note:
            text += f": {self.note}"
        return text


class Manifest(_Model):
    """The record of one backup run, successful or not."""

    format_version: int = PLAIN_FORMAT_VERSION
    id: str
    engine: Engine
    kind: str  # logical | base | snapshot | full-storage | shard-snapshot
    series: str  # database / cluster / collection name
    target: str  # where it came from, for humans (host:port/db), no secrets
    status: Status
    started_at: datetime
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None
    artifacts: list[Artifact] = Field(default_factory=list)
    tool_versions: dict[str, str] = Field(default_factory=dict)
    seawall_version: str | None = None
    postgres: PostgresInfo | None = None
    qdrant: QdrantInfo | None = None
    verification: Verification | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    pin: Pin | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def stored_size(self) -> int:
        return sum(a.stored_size for a in self.artifacts)

    @property
    def raw_size(self) -> int:
        return sum(a.raw_size for a in self.artifacts)

    @property
    def time(self) -> datetime:
        """The time a backup represents: its end (start for failed runs)."""
        return self.finished_at or self.started_at

    def artifact(self, role: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.role == role), None)

    def pinned(self, now: datetime) -> bool:
        """Whether an active pin keeps this backup at ``now``."""
        return self.pin is not None and self.pin.active(now)

    def to_json(self) -> bytes:
        # the lowest version whose readers handle this manifest safely
        if self.postgres is not None and self.postgres.tablespaces:
            self.format_version = TABLESPACE_FORMAT_VERSION
        elif self.pin is not None:
            self.format_version = PINNED_FORMAT_VERSION
        else:
            self.format_version = PLAIN_FORMAT_VERSION
        return self.model_dump_json(indent=2, exclude_none=False).encode() + b"\n"
