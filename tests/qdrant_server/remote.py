"""A handle on a *real* Qdrant (``QDRANT_URL``) with the test server's helpers.

Why: the same integration tests should run against a real Qdrant in a CI job
that has Docker. Tests talk to ``handle.url`` over HTTP either way; only the
set-up helpers (create a collection with N points, count points) differ, so
they are implemented here over the public API. Fault injection has no real
counterpart: ``faults`` is None and ``require_faults`` skips such tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from .spec import SpecViolation
from .storage import PointData, generate_points


class RemoteQdrant:
    is_real = True
    faults = None

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        headers = {"api-key": api_key} if api_key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=120)
        self._created: list[str] = []
        self.spec_violations: list[SpecViolation] = []
        info = self._client.get("/").json()
        self.version = str(info.get("version", "unknown"))
        #: collections that existed before the test: everything else is the
        #: test's (also those seawall made, e.g. ``restore --to``) and goes at close
        self._existing = set(self.collection_names())

    def _ok(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json().get("result")

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
        batch: int = 500,
    ) -> None:
        vectors: dict[str, Any] = {"size": dim, "distance": distance}
        body: dict[str, Any] = {"vectors": {vector_name: vectors} if vector_name else vectors}
        if shard_number:
            body["shard_number"] = shard_number
        body["replication_factor"] = replication_factor
        self._ok(self._client.put(f"/collections/{name}", json=body))
        self._created.append(name)
        self.upsert(name, generate_points(points, dim, seed, vector_name=vector_name), batch=batch)

    def upsert(self, name: str, points: Iterable[PointData], batch: int = 500) -> None:
        chunk: list[dict[str, Any]] = []
        for p in points:
            chunk.append({"id": p.id, "vector": p.vector, "payload": p.payload})
            if len(chunk) >= batch:
                self._ok(
                    self._client.put(
                        f"/collections/{name}/points",
                        params={"wait": "true"},
                        json={"points": chunk},
                    )
                )
                chunk = []
        if chunk:
            self._ok(
                self._client.put(
                    f"/collections/{name}/points", params={"wait": "true"}, json={"points": chunk}
                )
            )

    def points_count(self, name: str) -> int:
        return int(
            self._ok(self._client.post(f"/collections/{name}/points/count", json={"exact": True}))[
                "count"
            ]
        )

    def delete_collection(self, name: str) -> bool:
        return bool(self._ok(self._client.delete(f"/collections/{name}")))

    def collection_names(self) -> list[str]:
        return [c["name"] for c in self._ok(self._client.get("/collections"))["collections"]]

    def assert_no_spec_violations(self) -> None:
        """Nothing to check: a real server is the reference."""

    def close(self) -> None:
        """Delete what the test created (collections and their snapshots).

        That includes collections seawall created (``restore --to``): left on
        a real server, the next test's ``seawall backup`` of every collection
        would back them up too."""
        try:
            made = [n for n in self.collection_names() if n not in self._existing]
        except httpx.HTTPError:
            made = []
        for name in dict.fromkeys([*self._created, *made]):
            try:
                for snap in self._ok(self._client.get(f"/collections/{name}/snapshots")) or []:
                    self._client.delete(f"/collections/{name}/snapshots/{snap['name']}")
                self._client.delete(f"/collections/{name}")
            except httpx.HTTPError:
                pass
        self._client.close()


class RemoteCluster:
    """A real Qdrant cluster (``QDRANT_CLUSTER_URLS``) with the helpers of
    ``QdrantTestCluster`` that exist over the public API."""

    is_real = True
    faults = None

    def __init__(self, urls: list[str], api_key: str | None = None) -> None:
        self.servers = [RemoteQdrant(url, api_key) for url in urls]
        self.api_key = api_key
        self.peer_ids: list[int] = []
        for server in self.servers:
            info = server._ok(server._client.get("/cluster"))
            self.peer_ids.append(int(info["peer_id"]))

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def server_of(self, peer_id: int) -> RemoteQdrant:
        return self.servers[self.peer_ids.index(peer_id)]

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
        placement: Any = None,
    ) -> None:
        if placement is not None:
            raise NotImplementedError("explicit shard placement exists only on the test cluster")
        self.servers[0].create_collection(
            name,
            dim,
            distance,
            points,
            seed,
            shard_number=shard_number,
            replication_factor=replication_factor,
        )

    def points_count(self, name: str) -> int:
        return self.servers[0].points_count(name)

    def assert_no_spec_violations(self) -> None:
        """Nothing to check: a real server is the reference."""

    def close(self) -> None:
        for server in self.servers:
            server.close()
