"""Create a collection from a backup's recorded config, before shard uploads.

Why: a cluster backup is one shard snapshot per shard, and a shard snapshot
carries segments, not the collection. When the collection is gone (a new
cluster after a disaster, or deleted by mistake) seawall creates it first
from the config recorded in the manifest, then uploads the shards. Creating
it from the vectors and shard layout alone lost everything else a
production collection is configured with: quantization (collection-wide and
per vector), HNSW and optimizer settings, WAL and strict mode, and the
payload indexes. The restored segments still answered, but every segment
Qdrant built afterwards was unquantized and unindexed: filters on the
field became full scans (and are refused under strict mode), and the config
no longer matched the backup's.

So the create request carries every part of the recorded ``CollectionConfig``
that ``PUT /collections/{name}`` accepts, and each payload index recorded
at backup time (``payload_schema``, recorded since this version) is created
again with its parameters.
"""

from __future__ import annotations

from typing import Any

from seawall.catalog.models import Manifest
from seawall.errors import ConfigError, NotFoundError
from seawall.log import get_logger
from seawall.qdrant.client import QdrantClient, url_path

log = get_logger("qdrant.recreate")

#: ``params`` keys of a CollectionConfig that CreateCollection takes as they are
PARAMS = (
    "vectors",
    "shard_number",
    "replication_factor",
    "write_consistency_factor",
    "on_disk_payload",
    "sparse_vectors",
    "sharding_method",
)
#: top-level CollectionConfig key -> CreateCollection key (settings "diffs")
SETTINGS = {
    "hnsw_config": "hnsw_config",
    "optimizer_config": "optimizers_config",
    "wal_config": "wal_config",
    "quantization_config": "quantization_config",
    "strict_mode_config": "strict_mode_config",
    "metadata": "metadata",
}


def _without_none(value: Any) -> Any:
    """A reported config as a create request: unset (null) fields left out."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def create_body(config: dict[str, Any]) -> dict[str, Any]:
    """The ``PUT /collections/{name}`` body that recreates ``config``."""
    params = config.get("params") if isinstance(config.get("params"), dict) else None
    if not params or "vectors" not in params:
        raise ValueError("no params.vectors")
    body = {k: params[k] for k in PARAMS if params.get(k) is not None}
    for reported, create in SETTINGS.items():
        value = config.get(reported)
        if isinstance(value, dict) and value:
            body[create] = _without_none(value)
    return body


def field_schema(info: Any) -> Any:
    """A ``PayloadIndexInfo`` as reported -> the ``field_schema`` that creates it."""
    if not isinstance(info, dict):
        return None
    params = info.get("params")
    if isinstance(params, dict) and params.get("type"):
        return _without_none(params)
    return info.get("data_type")


def ensure_collection(client: QdrantClient, m: Manifest, collection: str) -> bool:
    """Create ``collection`` from the backup's config unless it exists; True if created."""
    try:
        client.collection_info(collection)
        return False
    except NotFoundError:
        pass
    config = (m.qdrant.config if m.qdrant else None) or {}
    try:
        body = create_body(config)
    except ValueError:
        raise ConfigError(
            f"collection {collection!r} does not exist and the manifest has no config to create "
            "it; create it with the same shard_number and vectors first"
        ) from None
    client.request(
        "PUT",
        url_path("collections", collection),
        what=f"creating collection {collection!r}",
        json_body=body,
    )
    log.info("collection created from the backup's config", extra={"collection": collection})
    return True


def recreate_indexes(client: QdrantClient, m: Manifest, collection: str) -> list[str]:
    """Create the payload indexes recorded at backup time; returns checks.

    Called once the shards are uploaded: creating an index indexes the
    segments that are there, and Qdrant builds later segments with it.
    """
    schema = (m.qdrant.payload_schema if m.qdrant else None) or {}
    created = []
    for name, info in sorted(schema.items()):
        wanted = field_schema(info)
        if wanted is None:
            continue
        client.request(
            "PUT",
            url_path("collections", collection, "index"),
            what=f"creating the payload index {name!r} of {collection!r}",
            params={"wait": "true"},
            json_body={"field_name": name, "field_schema": wanted},
        )
        created.append(name)
    return ["payload indexes re-created: " + ", ".join(created)] if created else []
