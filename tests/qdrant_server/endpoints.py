"""The REST endpoints the test server implements (a subset of Qdrant's API).

Each function receives the server (``app``), the handler (to answer) and the
request context. Shapes follow tests/qdrant_server/openapi.json (v1.19.0);
the handler validates every JSON answer against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import archive
from .config import parse_settings, vector_to_api
from .handler import Ctx, QdrantHandler, route
from .http_io import save_multipart_file
from .snapshots import FULL_SCOPE, SnapshotEntry, collection_scope, shard_scope, timestamp_name
from .storage import CollectionMeta, PointData, StorageError

if TYPE_CHECKING:
    from .server import QdrantTestServer

# -- service -------------------------------------------------------------------------


@route("GET", "/")
def root(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    h.send_json(
        ctx,
        200,
        {"title": "qdrant - vector search engine", "version": app.version, "commit": "0" * 40},
    )


@route("GET", "/healthz")
def healthz(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    h.send_plain(ctx, 200, "healthz check passed")


@route("GET", "/livez")
def livez(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    h.send_plain(ctx, 200, "healthz check passed")


@route("GET", "/readyz")
def readyz(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    if app.ready:
        h.send_plain(ctx, 200, "all shards are ready")
    else:
        h.send_plain(ctx, 503, "some shards are not ready")


# -- collections ---------------------------------------------------------------------


@route("GET", "/collections")
def list_collections(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    with app.cluster.lock:
        names = sorted(app.cluster.collections)
    h.send_ok(ctx, {"collections": [{"name": n} for n in names]})
    for name in names:
        if app.faults.take("delete_after_list", name) is not None:
            app.cluster.delete_collection(name)
            app.drop_snapshots_of(name)


def _collection_info(app: QdrantTestServer, meta: CollectionMeta) -> dict[str, Any]:
    points = app.cluster.count(meta.name)
    segments = sum(s.segments_count() for s in app.cluster.readable_shards(meta.name))
    return {
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": 0,
        "points_count": points,
        "segments_count": segments,
        "config": meta.api_config(),
        "payload_schema": app.cluster.payload_schema_info(meta.name),
    }


@route("GET", "/collections/{collection_name}")
def get_collection(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta = app.cluster.get(ctx.params["collection_name"])
    h.send_ok(ctx, _collection_info(app, meta))


@route("PUT", "/collections/{collection_name}")
def create_collection(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    body = ctx.json()
    app.cluster.create_collection(
        ctx.params["collection_name"],
        parse_settings(body),
        int(body.get("shard_number") or app.default_shard_number),
        int(body.get("replication_factor") or 1),
    )
    h.send_ok(ctx, True)


@route("DELETE", "/collections/{collection_name}")
def delete_collection(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    deleted = app.cluster.delete_collection(name)
    app.drop_snapshots_of(name)
    h.send_ok(ctx, deleted)


@route("GET", "/collections/{collection_name}/exists")
def collection_exists(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    with app.cluster.lock:
        exists = ctx.params["collection_name"] in app.cluster.collections
    h.send_ok(ctx, {"exists": exists})


# -- aliases -------------------------------------------------------------------------


def _alias_list(app: QdrantTestServer, collection: str | None) -> list[dict[str, str]]:
    with app.cluster.lock:
        return [
            {"alias_name": a, "collection_name": c}
            for a, c in sorted(app.cluster.aliases.items())
            if collection is None or c == collection
        ]


@route("GET", "/aliases")
def list_aliases(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    h.send_ok(ctx, {"aliases": _alias_list(app, None)})


@route("GET", "/collections/{collection_name}/aliases")
def collection_aliases(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    app.cluster.get(name)  # 404 for a collection that does not exist
    h.send_ok(ctx, {"aliases": _alias_list(app, name)})


@route("POST", "/collections/aliases")
def update_aliases(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    """create_alias / delete_alias / rename_alias, applied atomically as Qdrant does."""
    actions = ctx.json().get("actions") or []
    with app.cluster.lock:
        aliases = dict(app.cluster.aliases)
        for action in actions:
            if "create_alias" in action:
                op = action["create_alias"]
                app.cluster.get(op["collection_name"])
                aliases[op["alias_name"]] = op["collection_name"]  # Qdrant re-points silently
            elif "delete_alias" in action:
                name = action["delete_alias"]["alias_name"]
                if aliases.pop(name, None) is None:
                    raise StorageError(404, f"Not found: Alias {name} does not exists!")
            elif "rename_alias" in action:
                op = action["rename_alias"]
                target = aliases.pop(op["old_alias_name"], None)
                if target is None:
                    raise StorageError(
                        404, f"Not found: Alias {op['old_alias_name']} does not exists!"
                    )
                aliases[op["new_alias_name"]] = target
        app.cluster.aliases = aliases
        app.cluster.bump()
    h.send_ok(ctx, True)


# -- points --------------------------------------------------------------------------


def _points_from_body(body: dict[str, Any]) -> list[PointData]:
    if "points" in body:
        return [PointData(p["id"], p["vector"], p.get("payload")) for p in body["points"]]
    batch = body.get("batch", {})
    ids = batch.get("ids", [])
    vectors = batch.get("vectors", [])
    payloads = batch.get("payloads") or [None] * len(ids)
    if isinstance(vectors, dict):
        vectors = [{name: vecs[i] for name, vecs in vectors.items()} for i in range(len(ids))]
    return [PointData(i, v, p) for i, v, p in zip(ids, vectors, payloads, strict=False)]


@route("PUT", "/collections/{collection_name}/points")
def upsert_points(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    app.cluster.upsert(ctx.params["collection_name"], _points_from_body(ctx.json()))
    app.cluster.bump()
    h.send_ok(ctx, {"operation_id": app.cluster.commit, "status": "completed"})


@route("POST", "/collections/{collection_name}/points/count")
def count_points(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    h.send_ok(ctx, {"count": app.cluster.count(ctx.params["collection_name"])})


def _scored(point: Any, with_payload: bool, with_vector: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": point.id,
        "version": int(point.version),
        "score": float(point.score),
    }
    if with_payload:
        out["payload"] = point.payload or {}
    if with_vector and point.vector is not None:
        out["vector"] = vector_to_api(point.vector)
    return out


def _record(rec: Any, with_payload: bool, with_vector: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rec.id}
    if with_payload:
        out["payload"] = rec.payload or {}
    if with_vector and rec.vector is not None:
        out["vector"] = vector_to_api(rec.vector)
    return out


def _query_vector(query: Any) -> Any:
    """A dense, multi (list of lists) or sparse (``indices``/``values``) query vector."""
    if isinstance(query, dict) and "nearest" in query:
        query = query["nearest"]
    if isinstance(query, list) and query and all(isinstance(x, (int, float)) for x in query):
        return [float(x) for x in query]
    if (
        isinstance(query, list)
        and query
        and all(isinstance(r, list) and all(isinstance(x, (int, float)) for x in r) for r in query)
    ):
        return [[float(x) for x in r] for r in query]
    if isinstance(query, dict) and set(query) == {"indices", "values"}:
        return query
    raise StorageError(
        400, "Bad request: the test server supports only nearest queries by a vector"
    )


@route("POST", "/collections/{collection_name}/points/query")
def query_points(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    """Nearest-neighbour queries only (``query`` is a dense, multi or sparse
    vector, or ``{"nearest": v}``)."""
    name = ctx.params["collection_name"]
    body = ctx.json()
    limit = int(body.get("limit") or 10)
    with_payload = bool(body.get("with_payload", False))
    with_vector = bool(body.get("with_vector", False))
    query = _query_vector(body.get("query"))
    hits: list[Any] = []
    for shard in app.cluster.readable_shards(name):
        hits.extend(shard.query(query, body.get("using"), limit, with_payload, with_vector))
    hits.sort(key=lambda p: p.score, reverse=True)
    h.send_ok(ctx, {"points": [_scored(p, with_payload, with_vector) for p in hits[:limit]]})


@route("POST", "/collections/{collection_name}/points/scroll")
def scroll_points(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    body = ctx.json()
    limit = int(body.get("limit") or 10)
    with_payload = bool(body.get("with_payload", True))
    with_vector = bool(body.get("with_vector", False))
    offset = body.get("offset")
    records: list[Any] = []
    for shard in app.cluster.readable_shards(name):
        records.extend(shard.scroll_all(with_payload, with_vector))
    records.sort(key=lambda r: (isinstance(r.id, str), r.id))
    if offset is not None:
        records = [
            r for r in records if (isinstance(r.id, str), r.id) >= (isinstance(offset, str), offset)
        ]
    page, rest = records[:limit], records[limit:]
    h.send_ok(
        ctx,
        {
            "points": [_record(r, with_payload, with_vector) for r in page],
            "next_page_offset": rest[0].id if rest else None,
        },
    )


@route("POST", "/collections/{collection_name}/points")
def retrieve_points(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    body = ctx.json()
    ids = list(body.get("ids", []))
    with_payload = bool(body.get("with_payload", True))
    with_vector = bool(body.get("with_vector", False))
    found: list[Any] = []
    for shard in app.cluster.readable_shards(name):
        found.extend(shard.retrieve(ids, with_payload, with_vector))
    h.send_ok(ctx, [_record(r, with_payload, with_vector) for r in found])


# -- snapshot helpers ----------------------------------------------------------------


def _describe(
    app: QdrantTestServer, entry: SnapshotEntry, collection: str | None
) -> dict[str, object]:
    checksum = None
    if app.faults.take("wrong_checksum", collection) is not None:
        checksum = "0" * 64 if entry.checksum != "0" * 64 else "f" * 64
    return entry.describe(checksum)


def _listing(app: QdrantTestServer, scope: str, collection: str | None) -> list[dict[str, object]]:
    items = [_describe(app, e, collection) for e in app.snapshots.list(scope)]
    armed = app.faults.take("hostile_names", collection)
    if armed is not None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        for name in armed.value:
            items.append({"name": name, "creation_time": now, "size": 1024, "checksum": "0" * 64})
    return items


def _create_snapshot(
    app: QdrantTestServer,
    h: QdrantHandler,
    ctx: Ctx,
    scope: str,
    base_name: str,
    collection: str | None,
    writer: Any,
) -> None:
    """Shared flow of collection / shard / full snapshot creation (faults included)."""
    wait = ctx.q_bool("wait", True)
    armed = app.faults.take("fail_create", collection)
    if armed is not None:
        status = int(armed.value)
        if status == 507:
            h.send_error_json(
                ctx, 507, "Service internal error: No space left on device (os error 28)"
            )
        else:
            h.send_error_json(
                ctx,
                status,
                "Service internal error: failed to create snapshot (injected by the test)",
            )
        return
    slow = app.faults.take("slow_create", collection)
    delay = float(slow.value) if slow is not None else 0.0
    forced = app.faults.take("snapshot_name", collection)
    name = str(forced.value) if forced is not None else app.snapshots.unique_name(scope, base_name)
    result: dict[str, Any] = {}

    def build() -> None:
        partial = app.snapshots.new_file()
        try:
            size, checksum = writer(partial)
            if delay:
                time.sleep(delay)  # Qdrant keeps going after the client gave up
            result["entry"] = app.snapshots.publish(scope, name, partial, size, checksum)
        except BaseException as exc:
            partial.unlink(missing_ok=True)
            result["error"] = exc

    if not wait:
        threading.Thread(target=build, name=f"snapshot-{name}", daemon=True).start()
        h.send_accepted(ctx)
        return
    build()
    if "error" in result:
        raise result["error"]
    h.send_ok(ctx, _describe(app, result["entry"], collection))


def _download(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx, scope: str) -> None:
    name = ctx.params["snapshot_name"]
    entry = app.snapshots.get(scope, name)
    if entry is None:
        raise StorageError(404, f"Not found: Snapshot {name} not found")
    h.send_file(ctx, entry.path, entry.size)


def _delete(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx, scope: str) -> None:
    name = ctx.params["snapshot_name"]
    if not app.snapshots.delete(scope, name):
        raise StorageError(404, f"Not found: Snapshot {name} not found")
    if ctx.q_bool("wait", True):
        h.send_ok(ctx, True)
    else:
        h.send_accepted(ctx)


def _receive_upload(app: QdrantTestServer, ctx: Ctx, shard_id: int | None) -> Path:
    """Stream the multipart ``snapshot`` part to a temp file, record it in
    ``app.uploads``, verify ``checksum``."""
    if not ctx.content_type.lower().startswith("multipart/form-data"):
        raise StorageError(400, "Bad request: expected multipart/form-data with a `snapshot` part")
    target = app.work_dir / f"upload-{time.monotonic_ns()}.snapshot"
    with target.open("wb") as out:
        part = save_multipart_file(ctx.reader, ctx.content_type, "snapshot", out)
    app.uploads.append(
        {
            "collection": ctx.params.get("collection_name"),
            "shard_id": shard_id,
            "priority": ctx.q("priority"),
            "checksum": ctx.q("checksum"),
            "size": part.size,
            "sha256": part.sha256,
            "transfer_encoding": ctx.headers.get("Transfer-Encoding"),
            "content_length": int(ctx.headers.get("Content-Length") or 0) or None,
        }
    )
    armed = app.faults.take("fail_upload", ctx.params.get("collection_name"))
    if armed is not None:
        target.unlink(missing_ok=True)
        status = int(armed.value)
        detail = (
            "No space left on device (os error 28)"
            if status == 507
            else "failed to restore snapshot (injected by the test)"
        )
        raise StorageError(status, f"Service internal error: {detail}")
    expected = ctx.q("checksum")
    if expected is not None and expected.lower() != part.sha256:
        target.unlink(missing_ok=True)
        raise StorageError(
            400, f"Bad request: Checksum mismatch: expected {expected}, got {part.sha256}"
        )
    return target


# -- collection snapshots -------------------------------------------------------------


@route("GET", "/collections/{collection_name}/snapshots")
def list_snapshots(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    app.cluster.get(name)
    h.send_ok(ctx, _listing(app, collection_scope(name), name))


@route("POST", "/collections/{collection_name}/snapshots")
def create_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    meta = app.cluster.get(name)
    base = f"{name}-{app.peer_id}-{timestamp_name()}"

    def writer(path: Path) -> tuple[int, str]:
        return archive.write_collection_snapshot(path, meta, app.node, app.version)

    _create_snapshot(app, h, ctx, collection_scope(name), base, name, writer)


@route("GET", "/collections/{collection_name}/snapshots/{snapshot_name}")
def download_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    app.cluster.get(ctx.params["collection_name"])
    _download(app, h, ctx, collection_scope(ctx.params["collection_name"]))


@route("DELETE", "/collections/{collection_name}/snapshots/{snapshot_name}")
def delete_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    _delete(app, h, ctx, collection_scope(ctx.params["collection_name"]))


@route("POST", "/collections/{collection_name}/snapshots/upload")
def upload_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    path = _receive_upload(app, ctx, None)
    try:
        app.restore_collection(name, path)
    finally:
        path.unlink(missing_ok=True)
    if ctx.q_bool("wait", True):
        h.send_ok(ctx, True)
    else:
        h.send_accepted(ctx)


def _fetch_location(app: QdrantTestServer, body: dict[str, Any]) -> Path:
    """Download ``location`` (http/https only) for the recover endpoints."""
    location = str(body.get("location", ""))
    if urlsplit(location).scheme not in ("http", "https"):
        raise StorageError(
            400, f"Bad request: unsupported snapshot location {location!r} (http/https only)"
        )
    headers = {"api-key": str(body["api_key"])} if body.get("api_key") else {}
    target = app.work_dir / f"recover-{time.monotonic_ns()}.snapshot"
    digest = hashlib.sha256()
    try:
        with (
            urllib.request.urlopen(
                urllib.request.Request(location, headers=headers), timeout=60
            ) as src,
            target.open("wb") as out,
        ):
            while chunk := src.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
    except (urllib.error.URLError, OSError) as exc:
        target.unlink(missing_ok=True)
        raise StorageError(
            400, f"Bad request: failed to download snapshot from {location}: {exc}"
        ) from exc
    expected = body.get("checksum")
    if expected and str(expected).lower() != digest.hexdigest():
        target.unlink(missing_ok=True)
        raise StorageError(
            400, f"Bad request: Checksum mismatch: expected {expected}, got {digest.hexdigest()}"
        )
    return target


def _run_recover(h: QdrantHandler, ctx: Ctx, work: Any) -> None:
    if ctx.q_bool("wait", True):
        work()
        h.send_ok(ctx, True)
    else:
        threading.Thread(target=work, daemon=True).start()
        h.send_accepted(ctx)


@route("PUT", "/collections/{collection_name}/snapshots/recover")
def recover_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    name = ctx.params["collection_name"]
    body = ctx.json()
    app.uploads.append(
        {
            "collection": name,
            "shard_id": None,
            "priority": body.get("priority"),
            "checksum": body.get("checksum"),
            "location": body.get("location"),
        }
    )

    def work() -> None:
        path = _fetch_location(app, body)
        try:
            app.restore_collection(name, path)
        finally:
            path.unlink(missing_ok=True)

    _run_recover(h, ctx, work)


# -- shard snapshots -----------------------------------------------------------------


def _shard_params(app: QdrantTestServer, ctx: Ctx) -> tuple[CollectionMeta, int]:
    meta = app.cluster.get(ctx.params["collection_name"])
    shard_id = int(ctx.params["shard_id"])
    if shard_id >= meta.shard_number:
        raise StorageError(404, f"Not found: Shard {shard_id} does not exist in `{meta.name}`")
    return meta, shard_id


@route("GET", "/collections/{collection_name}/shards/{shard_id}/snapshots")
def list_shard_snapshots(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta, shard_id = _shard_params(app, ctx)
    h.send_ok(ctx, _listing(app, shard_scope(meta.name, shard_id), meta.name))


@route("POST", "/collections/{collection_name}/shards/{shard_id}/snapshots")
def create_shard_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta, shard_id = _shard_params(app, ctx)
    app.node.local_shard(meta, shard_id)  # 404 when this peer holds no replica
    base = f"{meta.name}-shard-{shard_id}-{app.peer_id}-{timestamp_name()}"

    def writer(path: Path) -> tuple[int, str]:
        return archive.write_shard_snapshot(path, meta, app.node, shard_id)

    _create_snapshot(app, h, ctx, shard_scope(meta.name, shard_id), base, meta.name, writer)


@route("GET", "/collections/{collection_name}/shards/{shard_id}/snapshots/{snapshot_name}")
def download_shard_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta, shard_id = _shard_params(app, ctx)
    _download(app, h, ctx, shard_scope(meta.name, shard_id))


@route("DELETE", "/collections/{collection_name}/shards/{shard_id}/snapshots/{snapshot_name}")
def delete_shard_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta, shard_id = _shard_params(app, ctx)
    _delete(app, h, ctx, shard_scope(meta.name, shard_id))


@route("POST", "/collections/{collection_name}/shards/{shard_id}/snapshots/upload")
def upload_shard_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta, shard_id = _shard_params(app, ctx)
    path = _receive_upload(app, ctx, shard_id)
    try:
        app.restore_shard(meta, shard_id, path)
    finally:
        path.unlink(missing_ok=True)
    if ctx.q_bool("wait", True):
        h.send_ok(ctx, True)
    else:
        h.send_accepted(ctx)


@route("PUT", "/collections/{collection_name}/shards/{shard_id}/snapshots/recover")
def recover_shard_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta, shard_id = _shard_params(app, ctx)
    body = ctx.json()
    app.uploads.append(
        {
            "collection": meta.name,
            "shard_id": shard_id,
            "priority": body.get("priority"),
            "checksum": body.get("checksum"),
            "location": body.get("location"),
        }
    )

    def work() -> None:
        path = _fetch_location(app, body)
        try:
            app.restore_shard(meta, shard_id, path)
        finally:
            path.unlink(missing_ok=True)

    _run_recover(h, ctx, work)


# -- full storage snapshots ----------------------------------------------------------


@route("GET", "/snapshots")
def list_full_snapshots(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    h.send_ok(ctx, _listing(app, FULL_SCOPE, None))


@route("POST", "/snapshots")
def create_full_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    if app.cluster.distributed:
        raise StorageError(
            400, "Bad request: full storage snapshots are not supported in distributed mode"
        )
    with app.cluster.lock:
        metas = list(app.cluster.collections.values())
    base = f"full-snapshot-{timestamp_name()}"

    def writer(path: Path) -> tuple[int, str]:
        with tempfile.TemporaryDirectory(dir=app.work_dir) as tmp:
            members: dict[str, tuple[str, Path]] = {}
            for meta in metas:
                fname = f"{meta.name}-{app.peer_id}-{timestamp_name()}.snapshot"
                fpath = Path(tmp) / f"{len(members)}.snapshot"
                archive.write_collection_snapshot(fpath, meta, app.node, app.version)
                members[meta.name] = (fname, fpath)
            return archive.write_full_snapshot(path, members)

    _create_snapshot(app, h, ctx, FULL_SCOPE, base, None, writer)


@route("GET", "/snapshots/{snapshot_name}")
def download_full_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    _download(app, h, ctx, FULL_SCOPE)


@route("DELETE", "/snapshots/{snapshot_name}")
def delete_full_snapshot(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    _delete(app, h, ctx, FULL_SCOPE)


# -- cluster -------------------------------------------------------------------------


@route("GET", "/cluster")
def cluster_info(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    cluster = app.cluster
    if not cluster.distributed:
        h.send_ok(ctx, {"status": "disabled"})
        return
    with cluster.lock:
        peers = {str(pid): {"uri": app.peer_uris[pid]} for pid in sorted(cluster.nodes)}
        leader = min(cluster.nodes)
        result = {
            "status": "enabled",
            "peer_id": app.peer_id,
            "peers": peers,
            "raft_info": {
                "term": cluster.term,
                "commit": cluster.commit,
                "pending_operations": 0,
                "leader": leader,
                "role": "Leader" if leader == app.peer_id else "Follower",
                "is_voter": True,
            },
            "consensus_thread_status": {
                "consensus_thread_status": "working",
                "last_update": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            },
            "message_send_failures": {},
        }
    h.send_ok(ctx, result)


@route("GET", "/collections/{collection_name}/cluster")
def collection_cluster_info(app: QdrantTestServer, h: QdrantHandler, ctx: Ctx) -> None:
    meta = app.cluster.get(ctx.params["collection_name"])
    local: list[dict[str, Any]] = []
    remote: list[dict[str, Any]] = []
    for shard_id in range(meta.shard_number):
        for peer_id, state in sorted(meta.peers_of(shard_id).items()):
            if peer_id == app.peer_id:
                shard = app.node.local_shard(meta, shard_id)
                local.append({"shard_id": shard_id, "points_count": shard.count(), "state": state})
            else:
                remote.append({"shard_id": shard_id, "peer_id": peer_id, "state": state})
    h.send_ok(
        ctx,
        {
            "peer_id": app.peer_id,
            "shard_count": meta.shard_number,
            "local_shards": local,
            "remote_shards": remote,
            "shard_transfers": [],
        },
    )


def cleanup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
