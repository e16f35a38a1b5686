"""Qdrant clusters: back up every shard exactly once, from an Active replica.

The pitfall this module exists for: in a cluster, ``POST
/collections/{c}/snapshots`` on a peer snapshots only the shards *that peer*
holds. A peer holding none answers with a tiny, perfectly valid tar that
restores nothing. So in cluster mode (``GET /cluster`` says ``enabled``) we
never take collection snapshots: we read the shard layout, pick for each
shard one peer whose replica is ``Active``, and take a *shard* snapshot
there. Peers are reached through ``QDRANT_PEER_URLS``: ``/cluster`` reports
peers by their internal p2p URI, not their REST URL, so each configured URL
is asked for its ``peer_id`` to build the map.

Restore puts each shard back with ``POST
/collections/{c}/shards/{s}/snapshots/upload`` on every peer that holds a
replica of it (see :mod:`.restore`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from seawall.catalog.models import Manifest
from seawall.context import Context
from seawall.errors import NotFoundError, SeawallError, SourceUnavailableError
from seawall.log import get_logger
from seawall.qdrant.client import QdrantClient
from seawall.qdrant.snapshots import SnapshotScope
from seawall.qdrant.store import ProgressFactory, snapshot_to_catalog

log = get_logger("qdrant.cluster")

SHARD_BASENAME = "shard-{sid}.snapshot.tar"


class ClusterError(SeawallError):
    """The cluster's shard layout does not allow a complete backup."""

    exit_code = 1


@dataclass
class Topology:
    """Peers of a cluster that we can reach over REST, by peer id."""

    this_peer: int
    all_peers: set[int]
    clients: dict[int, QdrantClient] = field(default_factory=dict)
    owned: list[QdrantClient] = field(default_factory=list)

    def close(self) -> None:
        for c in self.owned:
            with contextlib.suppress(Exception):
                c.close()

    @property
    def unknown_peers(self) -> set[int]:
        return self.all_peers - set(self.clients)


def detect(client: QdrantClient, peer_urls: list[str]) -> Topology | None:
    """``None`` on a single node; else the peers reachable over REST."""
    try:
        info = client.cluster_info()
    except NotFoundError:
        return None
    if info.get("status") != "enabled":
        return None
    this_peer = int(info["peer_id"])
    peers = {int(p) for p in (info.get("peers") or {})}
    topo = Topology(this_peer, peers | {this_peer}, {this_peer: client})
    for url in peer_urls:
        if url.rstrip("/") == client.base_url:
            continue
        peer = client.for_url(url)
        topo.owned.append(peer)
        try:
            peer_info = peer.cluster_info()
            pid = int(peer_info["peer_id"])
        except (SeawallError, KeyError, TypeError, ValueError) as exc:
            log.warning(
                "peer not reachable; its shards need another replica",
                extra={"peer_url": peer.display_url, "error": str(exc)},
            )
            continue
        topo.clients.setdefault(pid, peer)
    log.info(
        "cluster mode",
        extra={"peers": len(topo.all_peers), "reachable": len(topo.clients)},
    )
    return topo


@dataclass(frozen=True)
class ShardSource:
    shard_id: int
    peer_id: int


def layout(topo: Topology, collection: str) -> tuple[int, dict[int, dict[int, str]]]:
    """(shard_count, shard -> peer -> state) as the reachable peers report it."""
    shard_count = 0
    states: dict[int, dict[int, str]] = {}
    seen = False
    for pid, peer in sorted(topo.clients.items()):
        try:
            info = peer.collection_cluster(collection)
        except NotFoundError:
            raise
        except SeawallError as exc:
            log.warning("peer did not answer", extra={"peer_id": pid, "error": str(exc)})
            continue
        seen = True
        shard_count = max(shard_count, int(info.get("shard_count") or 0))
        for local in info.get("local_shards") or []:
            states.setdefault(int(local["shard_id"]), {})[pid] = str(local.get("state"))
        for remote in info.get("remote_shards") or []:
            states.setdefault(int(remote["shard_id"]), {}).setdefault(
                int(remote["peer_id"]), str(remote.get("state"))
            )
    if not seen:
        raise SourceUnavailableError(f"no cluster peer answered for collection {collection!r}")
    return shard_count, states


def plan_shards(topo: Topology, collection: str) -> list[ShardSource]:
    """One Active, reachable replica per shard, or a clear error."""
    shard_count, states = layout(topo, collection)
    plan: list[ShardSource] = []
    problems: list[str] = []
    for sid in range(shard_count):
        replicas = states.get(sid, {})
        active = sorted(p for p, st in replicas.items() if st == "Active")
        usable = [p for p in active if p in topo.clients]
        if usable:
            plan.append(ShardSource(sid, usable[0]))
        elif active:
            problems.append(
                f"shard {sid} is Active only on peer(s) {', '.join(map(str, active))} whose REST "
                "URL is unknown or unreachable (add them to QDRANT_PEER_URLS)"
            )
        else:
            shown = ", ".join(f"{p}={st}" for p, st in sorted(replicas.items())) or "no replicas"
            problems.append(f"shard {sid} has no Active replica ({shown})")
    if problems:
        raise ClusterError(f"cannot back up every shard of {collection!r}: " + "; ".join(problems))
    if not plan:
        raise ClusterError(f"collection {collection!r} reports no shards; nothing to back up")
    return plan


def backup_shards(
    ctx: Context,
    topo: Topology,
    manifest: Manifest,
    progress: ProgressFactory,
    plan: list[ShardSource] | None = None,
) -> None:
    """One shard snapshot per shard into ``manifest`` (server copies always deleted)."""
    collection = manifest.series
    plan = plan or plan_shards(topo, collection)
    chosen = {s.shard_id: s.peer_id for s in plan}
    if manifest.qdrant is not None:
        for entry in manifest.qdrant.shards:
            entry["backed_up"] = chosen.get(entry.get("shard_id", -1)) == entry.get("peer_id")
    for source in plan:
        peer = topo.clients[source.peer_id]
        scope = SnapshotScope.shard(collection, source.shard_id)
        art = snapshot_to_catalog(
            ctx,
            peer,
            scope,
            manifest,
            SHARD_BASENAME.format(sid=source.shard_id),
            "shard-snapshot",
            progress,
            record_in="artifact",
            shard_id=source.shard_id,
            peer_id=source.peer_id,
        )
        manifest.artifacts.append(art)
        log.info(
            "shard stored",
            extra={
                "collection": collection,
                "shard_id": source.shard_id,
                "peer_id": source.peer_id,
            },
        )


def holders(topo: Topology, collection: str) -> dict[int, list[int]]:
    """shard -> reachable peers holding a replica (any state), for restores."""
    _, states = layout(topo, collection)
    return {
        sid: sorted(p for p in peers if p in topo.clients) for sid, peers in sorted(states.items())
    }
