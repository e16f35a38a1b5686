"""Collection aliases: recorded at backup time, put back by a restore.

Why: Qdrant keeps aliases outside collection snapshots (only a full-storage
snapshot carries them), and deleting a collection deletes its aliases. An
application that reads through an alias (the usual blue/green re-indexing
set-up) found nothing after a disaster recovery that restored every
collection: the data was back, the names it queried were not. So each
backup records the aliases that point to its collection, and a restore into
that same collection re-creates those that no longer exist. An alias that
now points to another collection is left alone (someone moved it on
purpose, e.g. to a newer index) and said so; a restore under another name
(``--to``, a drill's scratch collection) touches no alias.
"""

from __future__ import annotations

from typing import Any

from seawall.catalog.models import Manifest
from seawall.errors import SeawallError
from seawall.log import get_logger
from seawall.qdrant.client import QdrantClient, url_path

log = get_logger("qdrant.aliases")


def _pairs(result: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (result or {}).get("aliases", []) if isinstance(result, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("alias_name"), str):
            out[item["alias_name"]] = str(item.get("collection_name"))
    return out


def aliases_of(client: QdrantClient, collection: str) -> list[str] | None:
    """The aliases pointing to ``collection`` (None when Qdrant would not say)."""
    try:
        result = client.request(
            "GET",
            url_path("collections", collection, "aliases"),
            what=f"aliases of {collection!r}",
        )
    except SeawallError as exc:
        log.warning(
            "could not list the collection's aliases; a restore will not re-create them",
            extra={"collection": collection, "error": str(exc)},
        )
        return None
    return sorted(_pairs(result))


def restore_aliases(client: QdrantClient, manifest: Manifest, collection: str) -> list[str]:
    """Re-create the recorded aliases of ``collection`` that are gone; lines for the checks."""
    recorded = (manifest.qdrant.aliases if manifest.qdrant else None) or []
    if not recorded:
        return []
    if collection != manifest.series:
        return [
            f"aliases at backup time ({', '.join(recorded)}) not touched: restored under "
            f"another name than {manifest.series!r}"
        ]
    now = _pairs(client.request("GET", "/aliases", what="listing aliases"))
    missing = [a for a in recorded if a not in now]
    lines = [
        f"alias {a!r} now points to {now[a]!r}: left alone"
        for a in recorded
        if a in now and now[a] != collection
    ]
    if missing:
        client.request(
            "POST",
            "/collections/aliases",
            what=f"re-creating the aliases of {collection!r}",
            json_body={
                "actions": [
                    {"create_alias": {"collection_name": collection, "alias_name": a}}
                    for a in missing
                ]
            },
        )
        lines.insert(0, f"alias(es) re-created: {', '.join(missing)}")
    kept = [a for a in recorded if now.get(a) == collection]
    if kept:
        lines.append(f"alias(es) still in place: {', '.join(kept)}")
    return lines
