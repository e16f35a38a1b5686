"""The backup catalog: manifests (pure data), atomic writes, queries, locks."""

from seawall.catalog.models import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Artifact,
    ContentStats,
    Encryption,
    Manifest,
    PostgresInfo,
    QdrantInfo,
    TableStats,
    Verification,
    utcnow,
)
from seawall.catalog.naming import decode_segment, encode_segment, new_backup_id
from seawall.catalog.store import (
    Catalog,
    CatalogError,
    ScanResult,
    artifact_key,
    backup_prefix,
    manifest_key,
    parse_manifest,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "Artifact",
    "Catalog",
    "CatalogError",
    "ContentStats",
    "Encryption",
    "Manifest",
    "PostgresInfo",
    "QdrantInfo",
    "ScanResult",
    "TableStats",
    "Verification",
    "artifact_key",
    "backup_prefix",
    "decode_segment",
    "encode_segment",
    "manifest_key",
    "new_backup_id",
    "parse_manifest",
    "utcnow",
]
