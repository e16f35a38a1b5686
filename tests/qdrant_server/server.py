"""Lifecycle of the Qdrant test server: one peer, or a cluster of peers.

``QdrantTestServer`` binds 127.0.0.1 on an ephemeral port and serves from a
thread of the test process; ``stop()`` shuts it down and removes its data
directory (shards and snapshot files). ``QdrantTestCluster`` starts N such
servers sharing one ``ClusterState``, the way Qdrant peers share Raft state.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from . import (
    archive,
    endpoints as _endpoints,  # noqa: F401  (registers the routes)
    endpoints_index as _endpoints_index,  # noqa: F401  (registers the routes)
)
from .config import parse_settings
from .faults import Faults
from .handler import QdrantHandler
from .snapshots import SnapshotEntry, SnapshotStore, collection_scope, timestamp_name
from .spec import SpecValidator, SpecViolation, default_validator
from .storage import (
    ClusterState,
    CollectionMeta,
    Node,
    PointData,
    StorageError,
    VectorParams,
    generate_points,
)

DEFAULT_VERSION = "1.19.0"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler sleeping in a slow_create fault must not block stop()
    app: QdrantTestServer


class QdrantTestServer:
    """A Qdrant-compatible server for tests; see tests/qdrant_server/README.md."""

    def __init__(
        self,
        api_key: str | None = None,
        version: str = DEFAULT_VERSION,
        *,
        default_shard_number: int = 1,
        validator: SpecValidator | None = None,
        cluster: ClusterState | None = None,
        peer_id: int | None = None,
        peer_uris: dict[int, str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.version = version
        self.default_shard_number = default_shard_number
        self.validator = validator or default_validator()
        self.cluster = cluster or ClusterState(distributed=False)
        self.peer_id = peer_id if peer_id is not None else random.Random().randrange(10**15, 10**16)
        self.peer_uris = peer_uris if peer_uris is not None else {}
        self.faults = Faults()
        self.spec_violations: list[SpecViolation] = []
        self.requests: list[tuple[str, str, int]] = []
        self.uploads: list[dict[str, Any]] = []
        self.internal_errors: list[str] = []
        self.ready = True
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._root: Path | None = None
        self._log_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> QdrantTestServer:
        self._root = Path(tempfile.mkdtemp(prefix="qdrant-test-server-", dir="/tmp"))
        self.work_dir.mkdir()
        self.node = Node(self.peer_id, self._root / "storage", self.cluster)
        self.snapshots = SnapshotStore(self._root / "snapshots")
        with self.cluster.lock:
            self.cluster.nodes[self.peer_id] = self.node
        httpd = _HTTPServer(("127.0.0.1", 0), QdrantHandler)
        httpd.app = self
        self._httpd = httpd
        self.peer_uris.setdefault(self.peer_id, f"{self.url}/")
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"qdrant-test-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._root is not None:
            with self.cluster.lock:
                self.cluster.nodes.pop(self.peer_id, None)
            self.node.close()
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> QdrantTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def work_dir(self) -> Path:
        assert self._root is not None, "server not started"
        return self._root / "work"

    @property
    def data_dir(self) -> Path:
        assert self._root is not None, "server not started"
        return self._root

    # -- test-side helpers -----------------------------------------------------------------

    def create_collection(
        self,
        name: str,
        dim: int,
        distance: str = "Cosine",
        points: int = 0,
        seed: int = 0,
        *,
        shard_number: int | None = None,
        replication_factor: int = 1,
        vector_name: str = "",
        batch: int = 1000,
    ) -> CollectionMeta:
        """Create a collection and fill it with ``points`` deterministic points
        (ids 0..points-1; ``storage.vector_for(id, dim, seed)`` recomputes a vector)."""
        meta = self.cluster.create_collection(
            name,
            {vector_name: VectorParams(dim, distance)},
            shard_number or self.default_shard_number,
            replication_factor,
        )
        self.upsert(name, generate_points(points, dim, seed, vector_name=vector_name), batch=batch)
        return meta

    def upsert(self, name: str, points: Iterable[PointData], batch: int = 1000) -> None:
        chunk: list[PointData] = []
        for point in points:
            chunk.append(point)
            if len(chunk) >= batch:
                self.cluster.upsert(name, chunk)
                chunk = []
        if chunk:
            self.cluster.upsert(name, chunk)

    def points_count(self, name: str) -> int:
        return self.cluster.count(name)

    def optimize(self, name: str) -> bool:
        """Run the collection's optimizers now (HNSW, quantization, merges):
        Qdrant does it in the background once a segment passes the
        ``indexing_threshold``; tests call this to get indexed segments."""
        return self.cluster.optimize(name)

    def delete_collection(self, name: str) -> bool:
        self.drop_snapshots_of(name)
        return self.cluster.delete_collection(name)

    def collection_names(self) -> list[str]:
        with self.cluster.lock:
            return sorted(self.cluster.collections)

    def list_snapshots(self, collection: str) -> list[SnapshotEntry]:
        return self.snapshots.list(collection_scope(collection))

    def all_snapshots(self) -> list[SnapshotEntry]:
        """Every snapshot file this peer holds (to assert nothing was left behind)."""
        return self.snapshots.all_entries()

    def inject_snapshot_file(
        self, collection: str, source: Path, name: str | None = None, *, move: bool = False
    ) -> SnapshotEntry:
        """Register an existing file as a finished snapshot of ``collection``.

        For benchmarks: building a multi-GB archive through EdgeShard is slow,
        and a download benchmark only needs the bytes. The checksum is computed.
        """
        import hashlib

        digest = hashlib.sha256()
        partial = self.snapshots.new_file()
        if move:
            shutil.move(str(source), partial)
        else:
            shutil.copyfile(source, partial)
        with partial.open("rb") as fh:
            while chunk := fh.read(4 * 1024 * 1024):
                digest.update(chunk)
        size = partial.stat().st_size
        scope = collection_scope(collection)
        final_name = name or self.snapshots.unique_name(
            scope, f"{collection}-{self.peer_id}-{timestamp_name()}"
        )
        return self.snapshots.publish(scope, final_name, partial, size, digest.hexdigest())

    def drop_snapshots_of(self, name: str) -> None:
        self.snapshots.drop_scope_prefix(collection_scope(name))
        self.snapshots.drop_scope_prefix(f"shard:{name}")

    def assert_no_spec_violations(self) -> None:
        """Fail with every recorded violation listed."""
        assert not self.spec_violations, "Qdrant API spec violations:\n" + "\n".join(
            map(str, self.spec_violations)
        )
        assert not self.internal_errors, "test server errors:\n" + "\n".join(self.internal_errors)

    def record_request(self, method: str, path: str, status: int) -> None:
        with self._log_lock:
            self.requests.append((method, path, status))

    # -- restore (called by the upload endpoints) ---------------------------------------------

    def restore_collection(self, name: str, snapshot: Path) -> None:
        """Recover ``name`` from a collection snapshot file, like Qdrant's upload endpoint."""
        self._restore_collection(name, snapshot)
        armed = self.faults.take("lose_points", name)
        if armed is not None:
            meta = self.cluster.get(name)
            lost = list(range(int(armed.value)))
            for shard_id in self.node.local_shard_ids(meta):
                self.node.local_shard(meta, shard_id).delete(list(lost))

    def _restore_collection(self, name: str, snapshot: Path) -> None:
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            archive.check_version_compatible(archive.peek_version(snapshot), self.version)
            restored = archive.read_collection_archive(snapshot, Path(tmp))
            params = restored.config.get("params", {})
            settings = parse_settings(restored.config)
            vectors = settings.vectors
            schema = restored.payload_schema
            shard_number = int(params.get("shard_number") or len(restored.shards))
            if not self.cluster.distributed:
                for shard in restored.shards.values():
                    if not shard.has_data:
                        raise StorageError(
                            500,
                            "Service internal error: Can't restore snapshot in local mode with missing data at shard: "
                            f"{shard.shard_id}",
                        )
                if self.cluster.collections.get(name) is not None:
                    # recovering into an existing collection keeps its aliases
                    self.cluster.delete_collection(name, drop_aliases=False)
                meta = self.cluster.create_collection(
                    name, settings, shard_number, 1, payload_schema=schema
                )
                for shard in restored.shards.values():
                    self.node.replace_local_shard(meta, shard.shard_id, shard.path)
                return
            with self.cluster.lock:
                meta_opt = self.cluster.collections.get(name)
            meta = meta_opt or self.cluster.create_collection(
                name,
                settings,
                shard_number,
                int(params.get("replication_factor") or 1),
                payload_schema=schema,
            )
            if meta.vectors != vectors:
                raise StorageError(
                    400, "Wrong input: snapshot vectors config does not match the collection"
                )
            for shard in restored.shards.values():
                if shard.has_data and self.node.has_local_shard(meta, shard.shard_id):
                    self.node.replace_local_shard(meta, shard.shard_id, shard.path)

    def restore_shard(self, meta: CollectionMeta, shard_id: int, snapshot: Path) -> None:
        """Recover one local shard replica from a shard snapshot file."""
        self.node.local_shard(meta, shard_id)  # 404 if not local
        with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
            shard_dir = Path(tmp) / "shard"
            archive.read_shard_archive(snapshot, shard_dir)
            self.node.replace_local_shard(meta, shard_id, shard_dir)
        with self.cluster.lock:
            peers = meta.replicas.get(shard_id, {})
            if self.peer_id in peers:
                peers[self.peer_id] = "Active"


class QdrantTestCluster:
    """N peers on N ports sharing one cluster state (shards spread round-robin)."""

    def __init__(
        self,
        peers: int = 3,
        api_key: str | None = None,
        version: str = DEFAULT_VERSION,
        seed: int = 7,
    ) -> None:
        rng = random.Random(seed)
        self.api_key = api_key
        self.state = ClusterState(distributed=True)
        self.peer_uris: dict[int, str] = {}
        self.servers: list[QdrantTestServer] = []
        for index in range(peers):
            peer_id = rng.randrange(10**15, 10**16)
            # Qdrant reports peers by their internal p2p URI, not the REST URL.
            self.peer_uris[peer_id] = f"http://qdrant-{index}.qdrant-headless.test:6335/"
            self.servers.append(
                QdrantTestServer(
                    api_key, version, cluster=self.state, peer_id=peer_id, peer_uris=self.peer_uris
                )
            )

    def start(self) -> QdrantTestCluster:
        try:
            for server in self.servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> QdrantTestCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    @property
    def peer_ids(self) -> list[int]:
        return [s.peer_id for s in self.servers]

    def server_of(self, peer_id: int) -> QdrantTestServer:
        return next(s for s in self.servers if s.peer_id == peer_id)

    def create_collection(
        self,
        name: str,
        dim: int,
        distance: str = "Cosine",
        points: int = 0,
        seed: int = 0,
        *,
        shard_number: int = 2,
        replication_factor: int = 1,
        placement: dict[int, dict[int, str]] | None = None,
    ) -> CollectionMeta:
        """Create a sharded collection. ``placement`` (shard -> peer -> state)
        overrides the round-robin layout."""
        meta = self.state.create_collection(
            name, {"": VectorParams(dim, distance)}, shard_number, replication_factor, placement
        )
        self.servers[0].upsert(name, generate_points(points, dim, seed))
        return meta

    def set_replica_state(self, collection: str, shard_id: int, peer_id: int, state: str) -> None:
        """E.g. mark a replica ``Dead``: it keeps its (stale) data but is not readable."""
        meta = self.state.get(collection)
        with self.state.lock:
            meta.replicas[shard_id][peer_id] = state
            self.state.bump()

    def points_count(self, name: str) -> int:
        return self.state.count(name)

    @property
    def spec_violations(self) -> list[SpecViolation]:
        return [v for s in self.servers for v in s.spec_violations]

    def assert_no_spec_violations(self) -> None:
        for server in self.servers:
            server.assert_no_spec_violations()
