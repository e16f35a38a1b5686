"""``seawall qdrant restore``: put a snapshot back and prove it worked.

- **Live data needs --clean**: restoring into a collection that exists
  replaces its points, so it is refused (:class:`RefusedError`, exit 9)
  unless the caller says ``clean`` — the same rule as ``postgres restore``,
  checked before anything is uploaded.
- **Version guard first**: Qdrant recovers snapshots of its own minor
  version or the previous one. Uploading a 1.12 snapshot into 1.15 fails
  deep inside the server after the whole upload; we refuse up front with
  :class:`RefusedError` and say which Qdrant version to restore into.
- **Streamed upload**: the artifact is decoded while it is uploaded
  (``POST /collections/{c}/snapshots/upload?priority=..&checksum=..``): no
  decoded temporary copy, memory bounded whatever the size. The multipart
  body's length is known in advance (the manifest records the raw size), so
  it goes out with a Content-Length. Nothing is trusted early: the stored
  object is read once into the decoder's spool and hashed against the
  manifest *before any request* (``decode_to``: a tampered artifact makes
  no request at all, and the bytes uploaded are decoded from the bytes
  hashed), and the decoded size and the decoded sha256 (``raw_sha256``)
  are checked *before the closing boundary is sent*;
  on any mismatch then the body is cut short, which Qdrant can only reject
  (a truncated multipart body, and its own check of ``checksum``).
  Manifests without a raw sha256 (older ones) and shards that go to
  several peers are decoded to a temporary file first, as before.
- **Proof**: after the upload (``wait=true``) the exact points count must
  equal the one recorded at backup time, and each sample vector recorded at
  backup time must find its own point.
- **Clusters**: shard snapshots go back with
  ``POST /collections/{c}/shards/{s}/snapshots/upload`` to every reachable
  peer holding a replica of the shard; the collection is created from the
  recorded config first if it does not exist.
- **Full-storage** snapshots are restored by Qdrant only at startup
  (``--storage-snapshot``); ``--output`` writes the decoded file for that.
"""

from __future__ import annotations

import itertools
import secrets
import shutil
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from seawall.catalog.models import Artifact, Manifest
from seawall.catalog.naming import encode_segment
from seawall.context import Context
from seawall.errors import (
    ConfigError,
    NotFoundError,
    RefusedError,
    VerificationError,
)
from seawall.log import get_logger
from seawall.pipeline.decode import decode_to
from seawall.pipeline.staged import StagedFile
from seawall.qdrant import scratch
from seawall.qdrant.aliases import restore_aliases
from seawall.qdrant.client import QdrantClient, url_path
from seawall.qdrant.decoded import open_decoded
from seawall.qdrant.recreate import ensure_collection, recreate_indexes
from seawall.qdrant.select import BackupSource

log = get_logger("qdrant.restore")

Priority = Literal["snapshot", "replica", "no_sync"]

UPLOAD_CHUNK = 1024 * 1024


@dataclass
class RestoreResult:
    collection: str
    points_count: int | None = None
    expected_points: int | None = None
    checks: list[str] = field(default_factory=list)
    output: Path | None = None
    replaced: bool = False


def parse_version(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        parts = text.strip().lstrip("v").split(".")
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None


def check_version(snapshot_version: str | None, server_version: str) -> None:
    """Refuse what Qdrant cannot recover: only the same or the next minor."""
    snap = parse_version(snapshot_version)
    server = parse_version(server_version)
    if snap is None or server is None:
        log.warning(
            "cannot compare versions; Qdrant will decide",
            extra={"snapshot_version": snapshot_version, "server_version": server_version},
        )
        return
    if snap[0] != server[0] or server[1] - snap[1] > 1:
        raise RefusedError(
            f"refusing to restore a Qdrant {snapshot_version} snapshot into Qdrant {server_version}: "
            "Qdrant recovers only snapshots of its own or the previous minor version; restore "
            f"into Qdrant {snap[0]}.{snap[1]}.x or {snap[0]}.{snap[1] + 1}.x, then upgrade one "
            "minor version at a time"
        )
    if server[1] < snap[1]:
        raise RefusedError(
            f"refusing to restore a Qdrant {snapshot_version} snapshot into the older Qdrant "
            f"{server_version}: upgrade the server to {snap[0]}.{snap[1]}.x first"
        )


def decode_artifact(ctx: Context, source: BackupSource, art: Artifact, dest: Path) -> str:
    """Decode one artifact to ``dest``; returns its sha256 (checked against the manifest).

    Decoded while it is downloaded and hashed, under a hidden temporary name
    beside ``dest`` (:class:`StagedFile`, ADR 0016 addendum), renamed only
    once every check passed: a corrupt artifact, an error or a kill never
    leaves a file at ``dest`` (``--output``) that looks like a decoded snapshot.
    """
    with StagedFile(
        dest,
        art.raw_size,
        raw_hash=True,
        fix="free space there or choose another destination",
        unusable_fix="choose a writable destination",
    ) as staged:
        decode_to(
            source.storage, source.key(art.name), staged, ctx.keys,
            expected_sha256=art.sha256, expected_size=art.stored_size,
        )  # fmt: skip
        assert staged.raw_hash is not None
        digest = staged.raw_hash.hexdigest()
        expected = art.raw_sha256
        if expected and digest != expected:
            raise VerificationError(
                f"{art.name}: decoded snapshot sha256 differs from the manifest; the backup is "
                "corrupt"
            )
        staged.commit()
    return digest


def _stream_upload(
    ctx: Context,
    client: QdrantClient,
    source: BackupSource,
    art: Artifact,
    path: str,
    priority: str,
    what: str,
) -> int:
    """Decode ``art`` straight into a multipart upload; returns the bytes sent.

    See the module docstring: every check runs before the closing boundary,
    and a failed check cuts the body short, so Qdrant never receives a
    complete upload of bytes that did not match the manifest.
    """
    assert art.raw_sha256
    key = source.key(art.name)
    boundary = secrets.token_hex(16)
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="snapshot"; filename="snapshot.tar"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    expected_size = art.raw_size
    expected_sha = art.raw_sha256

    def body() -> Generator[bytes, None, None]:
        # precheck: the decoder reads the stored object once into its spool and
        # checks size and sha256 there before decoding (invariant 4); with
        # MIRRORS it takes the first good copy. The first read returns only
        # after that, and is made before the request starts (see below).
        with open_decoded(
            source.storage, key, ctx.keys, art.sha256, art.stored_size, precheck=True
        ) as stream:
            chunk = stream.read(UPLOAD_CHUNK)
            if not chunk and expected_size:
                return  # the decoder failed: open_decoded raises its error on exit
            yield head
            while chunk:
                if stream.count > expected_size:
                    raise VerificationError(
                        f"{art.name}: decodes to more than the {expected_size} bytes the manifest "
                        "records; the backup is corrupt; upload cut short"
                    )
                yield chunk
                chunk = stream.read(UPLOAD_CHUNK)
        # open_decoded has joined the decoder: the stored sha256 matched.
        if stream.count != expected_size or stream.hash.hexdigest() != expected_sha:
            raise VerificationError(
                f"{art.name}: decoded snapshot differs from the manifest (size or sha256); "
                "the backup is corrupt; upload cut short"
            )
        yield tail

    started = time.monotonic()
    stream = body()
    # Run the body up to its first part before any request: a tampered or
    # truncated artifact (or a wrong key) raises here, and Qdrant is never asked.
    first = next(stream, None)
    if first is None:  # the decoder failed without an error of its own (not expected)
        raise VerificationError(f"{art.name}: decodes to nothing; the backup is corrupt")
    try:
        client.post_stream(
            path,
            what=what,
            params={"priority": priority, "checksum": expected_sha, "wait": "true"},
            content=itertools.chain((first,), stream),
            headers={
                "content-type": f"multipart/form-data; boundary={boundary}",
                "content-length": str(len(head) + expected_size + len(tail)),
            },
        )
    finally:
        # If Qdrant answered (or hung up) before reading the whole body, close
        # the generator now: it stops the decoder thread and closes the file
        # instead of leaving both to the garbage collector.
        stream.close()
    log.info(
        "snapshot uploaded and recovered",
        extra={
            "what": what,
            "bytes": expected_size,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return expected_size


def _upload(
    client: QdrantClient, path: str, file: Path, checksum: str, priority: str, what: str
) -> None:
    with file.open("rb") as fh:
        client.post_stream(
            path,
            what=what,
            params={"priority": priority, "checksum": checksum, "wait": "true"},
            files={"snapshot": ("snapshot.tar", fh, "application/octet-stream")},
        )


def restore(
    ctx: Context,
    source: BackupSource,
    *,
    target: str | None = None,
    priority: Priority = "snapshot",
    output: Path | None = None,
    check: bool = True,
    clean: bool = False,
) -> RestoreResult:
    m = source.manifest
    if target is not None and not target.strip():
        # ``--to "$NEW"`` with NEW unset: falling back to the backup's own
        # collection would turn "restore beside it" into "replace it" (--clean)
        raise ConfigError(
            "--to names no collection (empty: an unset variable?); give the new collection's "
            "name, or leave --to out to restore into the backed-up collection"
        )
    if not m.ok:
        raise RefusedError(f"{source.label} is a failed backup ({m.error}); choose another")
    collection = m.series if target is None else target
    result = RestoreResult(collection)
    if output is not None:
        return _to_output(ctx, source, output, result)
    if m.kind == "full-storage":
        raise RefusedError(
            "Qdrant restores full-storage snapshots only at startup: write the file with "
            "`seawall qdrant restore BACKUP --output FILE`, copy it to the node and start Qdrant "
            "with --storage-snapshot FILE (see docs/runbooks/restore-qdrant-cluster.md)"
        )
    from seawall.qdrant.backup import connect

    client, version = connect(ctx)
    try:
        check_version(m.qdrant.version if m.qdrant else None, version)
        result.replaced = _refuse_live(client, collection, clean)
        tmp_root = scratch.make("qdrant-restore")
        try:
            art = m.artifact("snapshot") or (m.artifacts[0] if m.artifacts else None)
            upload_path = url_path("collections", collection, "snapshots", "upload")
            if m.kind == "shard-snapshot":
                _restore_shards(ctx, client, source, collection, priority, tmp_root, result)
            elif art is None:
                raise VerificationError(f"{source.label} has no snapshot artifact to restore")
            elif art.raw_sha256:
                log.info(
                    "uploading snapshot (decoded on the fly)",
                    extra={"collection": collection, "bytes": art.raw_size},
                )
                sent = _stream_upload(
                    ctx,
                    client,
                    source,
                    art,
                    upload_path,
                    priority,
                    f"uploading the snapshot of {collection!r}",
                )
                result.checks.append(f"uploaded {sent} bytes (checksum verified by Qdrant)")
            else:
                file = tmp_root / "snapshot.tar"
                digest = decode_artifact(ctx, source, art, file)
                log.info(
                    "uploading snapshot",
                    extra={"collection": collection, "bytes": file.stat().st_size},
                )
                _upload(
                    client,
                    upload_path,
                    file,
                    digest,
                    priority,
                    f"uploading the snapshot of {collection!r}",
                )
                result.checks.append(
                    f"uploaded {file.stat().st_size} bytes (checksum verified by Qdrant)"
                )
        finally:
            shutil.rmtree(tmp_root, ignore_errors=True)
        result.checks.extend(restore_aliases(client, m, collection))
        if check:
            post_restore_checks(client, m, collection, result)
    finally:
        client.close()
    return result


def post_restore_checks(
    client: QdrantClient, m: Manifest, collection: str, result: RestoreResult
) -> None:
    """Points count and sample searches against what was recorded at backup time."""
    from seawall.qdrant.deep import manifest_tops, sample_queries
    from seawall.qdrant.sample import label, sample_found

    count = client.count(collection)
    result.points_count = count
    expected = m.qdrant.points_count if m.qdrant else None
    result.expected_points = expected
    if expected is not None and count != expected:
        raise VerificationError(
            f"restored {collection!r} has {count} points, the backup recorded {expected}; "
            "check Qdrant's log for the restore"
        )
    result.checks.append(f"points count {count} matches the backup")
    queries = sample_queries(m)
    tops = manifest_tops(m)
    missing = []
    for pid, vector, using in queries:
        ids = client.query(collection, vector, using, limit=3)
        if not sample_found(pid, ids, tops.get((str(pid), using))):
            missing.append(label(pid, using))
    if missing:
        raise VerificationError(
            f"restored {collection!r}: sample point(s) {missing} not found by searching their "
            "own vectors; the restore is incomplete"
        )
    if queries:
        result.checks.append(f"{len(queries)} sample search(es) found their points")


def _refuse_live(client: QdrantClient, collection: str, clean: bool) -> bool:
    """True if ``collection`` exists and may be replaced; RefusedError without ``clean``."""
    try:
        client.collection_info(collection)
    except NotFoundError:
        return False
    if not clean:
        raise RefusedError(
            f"collection {collection!r} exists on {client.display_url}: restoring would replace its "
            "points with the backup's; add --clean to replace it, or --to NEW_NAME to restore "
            "beside it"
        )
    log.info("replacing the existing collection", extra={"collection": collection})
    return True


def _restore_shards(
    ctx: Context,
    client: QdrantClient,
    source: BackupSource,
    collection: str,
    priority: str,
    tmp: Path,
    result: RestoreResult,
) -> None:
    from seawall.qdrant.cluster import Topology, detect, holders

    m = source.manifest
    created = ensure_collection(client, m, collection)
    if created:
        result.checks.append(f"collection {collection!r} created from the backup's config")
    topo = detect(client, ctx.settings.qdrant_peer_urls)
    if topo is None:
        pid = int(client.collection_cluster(collection).get("peer_id") or 0)
        topo = Topology(pid, {pid}, {pid: client})
    try:
        where = holders(topo, collection)
        for art in m.artifacts:
            sid = int(getattr(art, "shard_id", 0) or 0)
            peers = where.get(sid) or []
            if not peers:
                raise RefusedError(
                    f"no reachable peer holds shard {sid} of {collection!r}; set QDRANT_PEER_URLS "
                    "to every peer's REST URL (and check the collection's shard_number)"
                )
            upload_path = url_path("collections", collection, "shards", sid, "snapshots", "upload")
            if len(peers) == 1 and art.raw_sha256:
                pid = peers[0]
                _stream_upload(
                    ctx,
                    topo.clients[pid],
                    source,
                    art,
                    upload_path,
                    priority,
                    f"uploading shard {sid} of {collection!r} to peer {pid}",
                )
                result.checks.append(f"shard {sid} restored on peer {pid}")
                continue
            # Several replicas: decode once, upload the same file to each.
            file = tmp / f"shard-{sid}.tar"
            digest = decode_artifact(ctx, source, art, file)
            for pid in peers:
                peer = topo.clients[pid]
                _upload(
                    peer,
                    upload_path,
                    file,
                    digest,
                    priority,
                    f"uploading shard {sid} of {collection!r} to peer {pid}",
                )
                result.checks.append(f"shard {sid} restored on peer {pid}")
            file.unlink()
    finally:
        topo.close()
    if created:
        result.checks.extend(recreate_indexes(client, m, collection))


def _to_output(
    ctx: Context, source: BackupSource, output: Path, result: RestoreResult
) -> RestoreResult:
    """Write the decoded snapshot(s) to a file (one artifact) or a directory (several)."""
    m = source.manifest
    if len(m.artifacts) == 1:
        if output.is_dir():
            output = output / f"{encode_segment(m.series)}-{m.id}.snapshot"
        if output.exists():
            raise RefusedError(f"{output} exists; refusing to overwrite it")
        decode_artifact(ctx, source, m.artifacts[0], output)
        result.checks.append(f"decoded snapshot written to {output}")
    else:
        output.mkdir(parents=True, exist_ok=True)
        for art in m.artifacts:
            dest = output / f"shard-{int(getattr(art, 'shard_id', 0) or 0)}.snapshot"
            if dest.exists():
                raise RefusedError(f"{dest} exists; refusing to overwrite it")
            decode_artifact(ctx, source, art, dest)
            result.checks.append(f"decoded {art.name} to {dest}")
    result.output = output
    return result
