"""The backup catalog: manifests (pure data), atomic writes, queries, locks.

Re-exports resolve lazily so that importing a leaf module (``catalog.store``,
``catalog.wal_layout`` …) does not import pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall._lazy import lazy_exports

if TYPE_CHECKING:
    from seawall.catalog.models import (
        FORMAT_VERSION as FORMAT_VERSION,
        MANIFEST_NAME as MANIFEST_NAME,
        Artifact as Artifact,
        ContentStats as ContentStats,
        Encryption as Encryption,
        Manifest as Manifest,
        PostgresInfo as PostgresInfo,
        QdrantInfo as QdrantInfo,
        TableStats as TableStats,
        Verification as Verification,
        utcnow as utcnow,
    )
    from seawall.catalog.naming import (
        decode_segment as decode_segment,
        encode_segment as encode_segment,
        new_backup_id as new_backup_id,
    )
    from seawall.catalog.store import (
        Catalog as Catalog,
        CatalogError as CatalogError,
        ScanResult as ScanResult,
        artifact_key as artifact_key,
        backup_prefix as backup_prefix,
        manifest_key as manifest_key,
        parse_manifest as parse_manifest,
    )

#: Re-exported name -> leaf module, imported on first use (see seawall._lazy).
_EXPORTS = {
    "FORMAT_VERSION": "models",
    "MANIFEST_NAME": "models",
    "Artifact": "models",
    "ContentStats": "models",
    "Encryption": "models",
    "Manifest": "models",
    "PostgresInfo": "models",
    "QdrantInfo": "models",
    "TableStats": "models",
    "Verification": "models",
    "utcnow": "models",
    "decode_segment": "naming",
    "encode_segment": "naming",
    "new_backup_id": "naming",
    "Catalog": "store",
    "CatalogError": "store",
    "ScanResult": "store",
    "artifact_key": "store",
    "backup_prefix": "store",
    "manifest_key": "store",
    "parse_manifest": "store",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
