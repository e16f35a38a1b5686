"""Payload index endpoints of the test server (``PUT /collections/{c}/index``,
``DELETE /collections/{c}/index/{field_name}``).

Why: a collection's payload indexes are part of what a backup must bring
back (a filter on an unindexed field is slow, and under strict mode
refused). The index is created in every replica's qdrant-edge shard, so the
snapshot's segments carry real payload index files, and it is recorded in
the collection's schema (Qdrant's ``payload_index.json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .handler import Ctx, QdrantHandler, route
from .storage import StorageError

if TYPE_CHECKING:
    from .server import QdrantTestServer


def _updated(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    if ctx.q_bool("wait", False):
        h.send_ok(ctx, {"operation_id": app.cluster.commit, "status": "completed"})
    else:
        h.send_ok(ctx, {"operation_id": app.cluster.commit, "status": "acknowledged"})


@route("PUT", "/collections/{collection_name}/index")
def create_field_index(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    body = ctx.json()
    field_name = body.get("field_name")
    schema = body.get("field_schema")
    if not isinstance(field_name, str) or not field_name or schema is None:
        raise StorageError(400, "Bad request: field_name and field_schema are required")
    app.cluster.create_index(ctx.params["collection_name"], field_name, schema)
    _updated(app, h, ctx)


@route("DELETE", "/collections/{collection_name}/index/{field_name}")
def delete_field_index(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    app.cluster.delete_index(ctx.params["collection_name"], ctx.params["field_name"])
    _updated(app, h, ctx)
