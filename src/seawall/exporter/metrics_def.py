"""Every metric the exporter serves, defined once.

The collector emits exactly these and docs/metrics.md is generated from
them (``python -m seawall.exporter.metrics_doc``), so the documentation
cannot drift from the code. The eight ``postgres_backup_*`` /
``qdrant_backup_*`` names and their ``type`` values (``full`` for pg_dump)
are fixed by the operators' existing dashboards and alerts;
everything else follows the Prometheus naming guide with a ``seawall_``
prefix. Labels are bounded (engine, kind, series, tier, result, cluster,
repository): never a backup id.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricDef:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    type: str = "gauge"
    group: str = ""


SERIES = ("engine", "kind", "series")

#: How far a verification went, as the number seawall_backup_last_verification_level
#: serves (weakest first; docs/design.md "Verification level"): a number, not a
#: label, so the series count does not grow and `< 2` reads "not decrypted".
VERIFICATION_LEVELS: dict[str, int] = {"stored": 1, "decoded": 2, "deep": 3}

_DEFS: list[MetricDef] = [
    # --- compatible names (fixed) -------------------------------------------------
    MetricDef(
        "postgres_backup_last_success_timestamp",
        "UNIX time at which the newest successful PostgreSQL backup ended "
        '(type="wal": archive time of the newest archived WAL segment).',
        ("database", "type"),
        group="Compatible PostgreSQL/Qdrant metrics (names fixed)",
    ),
    MetricDef(
        "postgres_backup_duration_seconds",
        'Duration of the last finished PostgreSQL backup run, successful or not (not for type="wal").',
        ("database", "type"),
    ),
    MetricDef(
        "postgres_backup_size_bytes",
        "Stored size (after compression and encryption) of the newest successful PostgreSQL backup "
        '(type="wal": of every segment in the archive).',
        ("database", "type"),
    ),
    MetricDef(
        "postgres_backup_status",
        'Result of the last finished PostgreSQL backup run: 1 success, 0 failure (not for type="wal").',
        ("database", "type"),
    ),
    MetricDef(
        "qdrant_backup_last_success_timestamp",
        "UNIX time at which the newest successful Qdrant snapshot backup of the collection ended.",
        ("collection",),
    ),
    MetricDef(
        "qdrant_backup_duration_seconds",
        "Duration of the last finished Qdrant backup run of the collection (successful or not).",
        ("collection",),
    ),
    MetricDef(
        "qdrant_backup_size_bytes",
        "Stored size of the newest successful Qdrant backup of the collection.",
        ("collection",),
    ),
    MetricDef(
        "qdrant_backup_status",
        "Result of the last finished Qdrant backup run of the collection: 1 success, 0 failure.",
        ("collection",),
    ),
    # --- per series ---------------------------------------------------------------------
    MetricDef(
        "seawall_backup_last_success_timestamp_seconds",
        "UNIX time at which the newest successful backup of the series ended.",
        SERIES,
        group="Backup series (every engine and kind)",
    ),
    MetricDef(
        "seawall_backup_last_run_timestamp_seconds",
        "UNIX time at which the last finished run of the series ended (or started, if it recorded no end).",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_run_success",
        "Result of the last finished run of the series: 1 success, 0 failure.",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_run_duration_seconds",
        "Duration of the last finished run of the series.",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_success_size_bytes",
        "Stored size of the newest successful backup of the series.",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_runs",
        "Runs recorded in the catalog by result (success|failed). The catalog "
        "keeps failed runs for RETENTION_FAILED_GRACE, so "
        "success/(success+failed) is the success rate over that period.",
        (*SERIES, "result"),
    ),
    MetricDef(
        "seawall_backups",
        "Successful backups of the series currently in the catalog.",
        SERIES,
    ),
    MetricDef(
        "seawall_backups_pinned",
        "Backups of the series kept by an active pin (`seawall pin`): retention never "
        "deletes them; a pin given --until stops counting when it ends.",
        SERIES,
    ),
    MetricDef(
        "seawall_backups_by_tier",
        "Successful backups of the series kept by each retention tier "
        "(last|daily|weekly|monthly|yearly); a backup in several tiers counts in each.",
        (*SERIES, "tier"),
    ),
    MetricDef(
        "seawall_backup_stored_bytes",
        "Stored bytes of every backup of the series in the catalog.",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_verification_timestamp_seconds",
        "UNIX time of the most recent verification of any backup of the series "
        "(absent if none was ever verified).",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_verification_success",
        "Result of the most recent verification of the series: 1 passed, 0 failed.",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_verification_level",
        "How far the most recent verification of the series went (verification.level): "
        "1 stored (stored bytes against the sha256 taken while writing, no key), "
        "2 decoded (decrypted, decompressed, structure read), 3 deep (restored and compared).",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_decoded_verification_timestamp_seconds",
        "UNIX time of the most recent verification of the series that decrypted and "
        "decompressed a backup (level decoded or deep; absent if none did): the "
        "stored-level check after each backup on a host without the identity does not count.",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_last_decoded_verification_success",
        "Result of that verification (decoded or deep): 1 passed, 0 failed. A later "
        "stored-level check that passes does not clear a failed decoding.",
        SERIES,
    ),
    MetricDef(
        "seawall_backup_running_start_timestamp_seconds",
        "UNIX time at which the run holding the series lock started (absent when no run is in progress).",
        SERIES,
    ),
    MetricDef(
        "seawall_rejected_runs",
        "Failed runs against a database or collection that does not exist and was never "
        "backed up (a typo in DB_NAME or QDRANT_COLLECTIONS, or Qdrant down on the first "
        "run): recorded apart, so they create no series that pages. Cleared by "
        "`seawall forget --series NAME`, dropped by prune after RETENTION_FAILED_GRACE.",
    ),
    MetricDef(
        "seawall_rejected_run_last_timestamp_seconds",
        "UNIX time of the newest rejected run (absent when there is none).",
    ),
    # --- PITR / WAL ----------------------------------------------------------------------
    MetricDef(
        "seawall_pitr_earliest_timestamp_seconds",
        "Oldest restorable point: end of the oldest base backup from which WAL replays without a gap.",
        ("cluster",),
        group="Point-in-time recovery and WAL archive",
    ),
    MetricDef(
        "seawall_pitr_latest_timestamp_seconds",
        "Newest restorable point: archive time of the last segment of the contiguous WAL run "
        "that follows the newest complete base backup.",
        ("cluster",),
    ),
    MetricDef(
        "seawall_pitr_window_seconds",
        "Length of the point-in-time recovery window (latest - earliest).",
        ("cluster",),
    ),
    MetricDef("seawall_wal_segments", "WAL segments in the archive.", ("cluster",)),
    MetricDef(
        "seawall_wal_archive_bytes",
        "Stored bytes of the WAL segments in the archive.",
        ("cluster",),
    ),
    MetricDef(
        "seawall_wal_gaps",
        "Holes in the WAL archive: ranges of missing segments between the oldest and newest "
        "segment of each timeline. Anything above 0 breaks point-in-time recovery across the hole.",
        ("cluster",),
    ),
    MetricDef(
        "seawall_wal_missing_segments",
        "Segments missing between the oldest and newest archived segment of each timeline.",
        ("cluster",),
    ),
    MetricDef(
        "seawall_wal_last_archived_timestamp_seconds",
        "Archive time (file mtime) of the newest archived WAL segment.",
        ("cluster",),
    ),
    MetricDef(
        "seawall_wal_newest_segment_age_seconds",
        "Age at scrape time of the newest archived WAL segment.",
        ("cluster",),
    ),
    # --- drills ---------------------------------------------------------------------------
    MetricDef(
        "seawall_drill_last_timestamp_seconds",
        "UNIX time at which the last DR drill of the series ended (absent when no drill was recorded).",
        ("engine", "series"),
        group="Disaster-recovery drills",
    ),
    MetricDef(
        "seawall_drill_last_success",
        "Result of the last DR drill: 1 passed, 0 failed.",
        ("engine", "series"),
    ),
    MetricDef(
        "seawall_drill_last_success_timestamp_seconds",
        "UNIX time at which the newest passed DR drill ended.",
        ("engine", "series"),
    ),
    MetricDef(
        "seawall_drill_rto_seconds",
        "Recovery time measured by the last drill that recorded one.",
        ("engine", "series"),
    ),
    MetricDef(
        "seawall_drill_rpo_seconds",
        "Recovery point (data loss window) measured by the last drill that recorded one.",
        ("engine", "series"),
    ),
    # --- per repository (the primary and each mirror) ---------------------------
    MetricDef(
        "seawall_repository_info",
        "Always 1: one per repository the exporter watches; role is primary or mirror "
        "(MIRRORS). repository is the location as configured (a path or an s3:// URL).",
        ("repository", "role"),
        group="Per repository: the primary and its mirrors",
    ),
    MetricDef(
        "seawall_repository_reachable",
        "1 if the last look at the repository succeeded (a local primary: its directory "
        "exists; anything listed: the last listing answered), else 0.",
        ("repository",),
    ),
    MetricDef(
        "seawall_repository_last_refresh_timestamp_seconds",
        "UNIX time at which the repository was last listed successfully (listed "
        "repositories only: object storage and mirrors, every --refresh-interval).",
        ("repository",),
    ),
    MetricDef(
        "seawall_repository_stored_bytes",
        "Bytes stored in the repository: the sum of its objects' sizes at the last listing "
        "(a local primary without mirrors, which is not listed: its backups' stored bytes "
        "plus its WAL archive).",
        ("repository",),
    ),
    MetricDef(
        "seawall_repository_objects",
        "Objects in the repository at the last listing (listed repositories only).",
        ("repository",),
    ),
    MetricDef(
        "seawall_repository_backup_last_success_timestamp_seconds",
        "UNIX time at which the newest successful backup of the series that this "
        "repository holds ended (absent when it holds none).",
        ("repository", *SERIES),
    ),
    MetricDef(
        "seawall_mirror_lag_objects",
        "Objects present in the primary and missing from this mirror, from the last listings "
        "of both (absent while either is unreachable).",
        ("repository",),
    ),
    MetricDef(
        "seawall_mirror_lag_seconds",
        "Age of the oldest object present in the primary and missing from this mirror "
        "(0 when the mirror holds everything; absent while either is unreachable).",
        ("repository",),
    ),
    # --- volume and exporter ---------------------------------------------------------
    MetricDef(
        "seawall_storage_size_bytes",
        "Size of the volume holding BACKUP_DIR.",
        group="Backup volume and the exporter itself",
    ),
    MetricDef("seawall_storage_used_bytes", "Used bytes of the volume holding BACKUP_DIR."),
    MetricDef("seawall_storage_free_bytes", "Bytes available to seawall on the volume."),
    MetricDef(
        "seawall_storage_used_ratio",
        "used / (used + free) of the volume, as df reports it (0..1).",
    ),
    MetricDef(
        "seawall_backup_dir_accessible",
        "1 if BACKUP_DIR exists and is a readable directory (object storage: the last "
        "listing answered), else 0.",
    ),
    MetricDef("seawall_catalog_manifests", "Valid manifests read at this scrape."),
    MetricDef(
        "seawall_catalog_errors",
        "Corrupt, foreign or unreadable manifests and directories met at this scrape "
        "(skipped; see the exporter's log for which).",
    ),
    MetricDef("seawall_scrape_duration_seconds", "Time this scrape took to read the catalog."),
    MetricDef(
        "seawall_build_info",
        "Always 1; the labels say which seawall and Python serve the metrics.",
        ("version", "python"),
    ),
]

METRICS: dict[str, MetricDef] = {d.name: d for d in _DEFS}
