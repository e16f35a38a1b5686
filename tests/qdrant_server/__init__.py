"""A Qdrant-compatible HTTP server for seawall's tests (issue 6).

No Qdrant binary can run on the CI machines, so seawall's Qdrant client is
tested against this server: real HTTP on 127.0.0.1, requests and responses
validated against Qdrant's OpenAPI spec (v1.19.0), snapshots in Qdrant's
archive layout holding real qdrant-edge segment data, fault injection and a
multi-peer cluster mode. See README.md in this directory.
"""

from __future__ import annotations

from .faults import HOSTILE_NAMES, Faults
from .server import DEFAULT_VERSION, QdrantTestCluster, QdrantTestServer
from .spec import SpecValidator, SpecViolation
from .storage import PointData, generate_points, vector_for

__all__ = [
    "DEFAULT_VERSION",
    "HOSTILE_NAMES",
    "Faults",
    "PointData",
    "QdrantTestCluster",
    "QdrantTestServer",
    "SpecValidator",
    "SpecViolation",
    "generate_points",
    "vector_for",
]
