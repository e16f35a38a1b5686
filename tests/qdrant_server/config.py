"""Collection configuration of the test server: Qdrant's JSON <-> qdrant-edge.

Why a module of its own: a collection is more than dense vectors. Sparse
vectors, multivectors, quantization, HNSW and optimizer settings and
payload indexes all live in the collection's config, travel in a
snapshot's ``config.json`` / ``payload_index.json``, and must come back
exactly after a restore. Each setting is parsed from the request (shapes of
tests/qdrant_server/openapi.json), kept as the JSON Qdrant reports, and
handed to the real engine (``qdrant_edge``) so that the segment files a
snapshot carries are the ones the engine writes for that setting (HNSW
graphs, quantized vectors, sparse inverted indexes, payload indexes).

What qdrant-edge-py 0.9 cannot do is refused with a 400 naming it
(the ``turbo4`` datatype, text index parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import qdrant_edge as qe

DISTANCES: dict[str, Any] = {
    "Cosine": qe.Distance.Cosine,
    "Euclid": qe.Distance.Euclid,
    "Dot": qe.Distance.Dot,
    "Manhattan": qe.Distance.Manhattan,
}
DATATYPES: dict[str, Any] = {
    "float32": qe.VectorStorageDatatype.Float32,
    "float16": qe.VectorStorageDatatype.Float16,
    "uint8": qe.VectorStorageDatatype.Uint8,
}
COMPRESSION: dict[str, Any] = {
    "x4": qe.CompressionRatio.X4,
    "x8": qe.CompressionRatio.X8,
    "x16": qe.CompressionRatio.X16,
    "x32": qe.CompressionRatio.X32,
    "x64": qe.CompressionRatio.X64,
}
BINARY_ENCODING: dict[str, Any] = {
    "one_bit": qe.BinaryQuantizationEncoding.OneBit,
    "two_bits": qe.BinaryQuantizationEncoding.TwoBits,
    "one_and_half_bits": qe.BinaryQuantizationEncoding.OneAndHalfBits,
}
BINARY_QUERY_ENCODING: dict[str, Any] = {
    "default": qe.BinaryQuantizationQueryEncoding.Default,
    "binary": qe.BinaryQuantizationQueryEncoding.Binary,
    "scalar4bits": qe.BinaryQuantizationQueryEncoding.Scalar4Bits,
    "scalar8bits": qe.BinaryQuantizationQueryEncoding.Scalar8Bits,
}
TURBO_BITS: dict[str, Any] = {
    "bits1": qe.TurboQuantBitSize.Bits1,
    "bits1_5": qe.TurboQuantBitSize.Bits1_5,
    "bits2": qe.TurboQuantBitSize.Bits2,
    "bits4": qe.TurboQuantBitSize.Bits4,
}
SCHEMA_TYPES: dict[str, Any] = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "geo": qe.PayloadSchemaType.Geo,
    "text": qe.PayloadSchemaType.Text,
    "bool": qe.PayloadSchemaType.Bool,
    "datetime": qe.PayloadSchemaType.Datetime,
    "uuid": qe.PayloadSchemaType.Uuid,
}
#: index parameter classes whose fields are plain flags (text params are richer: refused)
INDEX_PARAMS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "keyword": (qe.KeywordIndexParams, ("is_tenant", "on_disk", "enable_hnsw", "prefix")),
    "integer": (
        qe.IntegerIndexParams,
        ("lookup", "range", "is_principal", "on_disk", "enable_hnsw"),
    ),
    "float": (qe.FloatIndexParams, ("is_principal", "on_disk", "enable_hnsw")),
    "bool": (qe.BoolIndexParams, ("on_disk", "enable_hnsw")),
    "datetime": (qe.DatetimeIndexParams, ("is_principal", "on_disk", "enable_hnsw")),
    "uuid": (qe.UuidIndexParams, ("is_tenant", "on_disk", "enable_hnsw")),
    "geo": (qe.GeoIndexParams, ("on_disk", "enable_hnsw")),
}

#: what Qdrant reports when a collection was created without these settings
DEFAULT_HNSW: dict[str, Any] = {
    "m": 16,
    "ef_construct": 100,
    "full_scan_threshold": 10000,
    "max_indexing_threads": 0,
    "on_disk": False,
}
DEFAULT_OPTIMIZERS: dict[str, Any] = {
    "deleted_threshold": 0.2,
    "vacuum_min_vector_number": 1000,
    "default_segment_number": 0,
    "max_segment_size": None,
    "memmap_threshold": None,
    "indexing_threshold": 10000,
    "flush_interval_sec": 5,
    "max_optimization_threads": None,
}


class StorageError(Exception):
    """An error with the HTTP status and message Qdrant would answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _bad(message: str) -> StorageError:
    """A setting the test server (or qdrant-edge) cannot honour: answered 400."""
    return StorageError(400, f"Bad request: {message}")


def _drop_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


@dataclass(frozen=True)
class VectorParams:
    """One dense vector (plain or multivector) as Qdrant reports it.

    ``extra`` keeps the optional settings exactly as given (multivector_config,
    quantization_config, hnsw_config, datatype, on_disk), so the config
    reported after a restore can be compared with the original byte for byte.
    """

    size: int
    distance: str
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.extra)

    @property
    def multivector(self) -> bool:
        return "multivector_config" in self.options

    def to_api(self) -> dict[str, Any]:
        return {"size": self.size, "distance": self.distance, **self.options}

    def to_edge(self) -> Any:
        opts = self.options
        kwargs: dict[str, Any] = {}
        if "multivector_config" in opts:
            if opts["multivector_config"].get("comparator") != "max_sim":
                raise _bad("multivector comparator must be max_sim")
            kwargs["multivector_config"] = qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim)
        if "datatype" in opts:
            if opts["datatype"] not in DATATYPES:
                raise _bad(f"datatype {opts['datatype']!r} is not supported by qdrant-edge")
            kwargs["datatype"] = DATATYPES[opts["datatype"]]
        if "quantization_config" in opts:
            kwargs["quantization_config"] = quantization_to_edge(opts["quantization_config"])
        if "hnsw_config" in opts:
            kwargs["hnsw_config"] = hnsw_to_edge({**DEFAULT_HNSW, **opts["hnsw_config"]})
        if "on_disk" in opts:
            kwargs["on_disk"] = bool(opts["on_disk"])
        return qe.EdgeVectorParams(size=self.size, distance=DISTANCES[self.distance], **kwargs)


VECTOR_OPTIONS = ("multivector_config", "quantization_config", "hnsw_config", "datatype", "on_disk")


def parse_vector(raw: Any) -> VectorParams:
    if not isinstance(raw, dict) or "size" not in raw or "distance" not in raw:
        raise _bad("a vector config needs size and distance")
    if raw["distance"] not in DISTANCES:
        raise _bad(f"unknown distance {raw['distance']!r}")
    extra = tuple((k, raw[k]) for k in VECTOR_OPTIONS if k in raw and raw[k] is not None)
    params = VectorParams(int(raw["size"]), str(raw["distance"]), extra)
    params.to_edge()  # refuse what the engine cannot do now, not at the first write
    return params


def parse_vectors_config(raw: Any) -> dict[str, VectorParams]:
    """``vectors`` of a CreateCollection body (or of an archive's config.json).

    ``{}`` (or absent) is a collection without dense vectors (sparse only).
    """
    if raw is None or raw == {}:
        return {}
    if isinstance(raw, dict) and "size" in raw:
        return {"": parse_vector(raw)}
    if isinstance(raw, dict):
        return {str(name): parse_vector(v) for name, v in raw.items()}
    raise _bad("vectors must be a vector config or a map of named vector configs")


@dataclass(frozen=True)
class SparseParams:
    """One sparse vector's settings, as given (``index``, ``modifier``)."""

    extra: tuple[tuple[str, Any], ...] = ()

    def to_api(self) -> dict[str, Any]:
        return dict(self.extra)

    def to_edge(self) -> Any:
        opts = self.to_api()
        index = opts.get("index") or {}
        kwargs: dict[str, Any] = {}
        if opts.get("modifier") == "idf":
            kwargs["modifier"] = qe.Modifier.Idf
        elif opts.get("modifier") not in (None, "none"):
            raise _bad(f"unknown sparse modifier {opts['modifier']!r}")
        if index.get("full_scan_threshold") is not None:
            kwargs["full_scan_threshold"] = int(index["full_scan_threshold"])
        if index.get("on_disk") is not None:
            kwargs["on_disk"] = bool(index["on_disk"])
        if index.get("datatype") is not None:
            if index["datatype"] not in DATATYPES:
                raise _bad(f"sparse datatype {index['datatype']!r} is not supported")
            kwargs["datatype"] = DATATYPES[index["datatype"]]
        return qe.EdgeSparseVectorParams(**kwargs)


def parse_sparse_config(raw: Any) -> dict[str, SparseParams]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _bad("sparse_vectors must be a map of names to sparse vector params")
    out: dict[str, SparseParams] = {}
    for name, value in raw.items():
        value = value or {}
        extra = tuple((k, value[k]) for k in ("index", "modifier") if value.get(k) is not None)
        out[str(name)] = SparseParams(extra)
        out[str(name)].to_edge()
    return out


def quantization_to_edge(raw: Any) -> Any:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise _bad("quantization_config must be one of scalar, product, binary, turbo")
    ((kind, cfg),) = raw.items()
    cfg = cfg or {}
    always_ram = cfg.get("always_ram")
    if kind == "scalar":
        if cfg.get("type") != "int8":
            raise _bad("scalar quantization type must be int8")
        return qe.ScalarQuantizationConfig(
            type=qe.ScalarType.Int8, quantile=cfg.get("quantile"), always_ram=always_ram
        )
    if kind == "product":
        if cfg.get("compression") not in COMPRESSION:
            raise _bad(f"unknown product compression {cfg.get('compression')!r}")
        return qe.ProductQuantizationConfig(
            compression=COMPRESSION[cfg["compression"]], always_ram=always_ram
        )
    if kind == "binary":
        return qe.BinaryQuantizationConfig(
            always_ram=always_ram,
            encoding=BINARY_ENCODING.get(cfg.get("encoding") or "one_bit"),
            query_encoding=BINARY_QUERY_ENCODING.get(cfg.get("query_encoding") or "default"),
        )
    if kind == "turbo":
        bits = cfg.get("bits")
        if bits is not None and bits not in TURBO_BITS:
            raise _bad(f"unknown turbo quantization bits {bits!r}")
        return qe.TurboQuantQuantizationConfig(
            always_ram=always_ram, bits=TURBO_BITS[bits] if bits else None
        )
    raise _bad(f"{kind} quantization is not supported by the test server (qdrant-edge)")


def hnsw_to_edge(cfg: dict[str, Any]) -> Any:
    return qe.HnswIndexConfig(
        m=int(cfg["m"]),
        ef_construct=int(cfg["ef_construct"]),
        full_scan_threshold=int(cfg["full_scan_threshold"]),
        max_indexing_threads=int(cfg.get("max_indexing_threads") or 0),
        on_disk=cfg.get("on_disk"),
        payload_m=cfg.get("payload_m"),
    )


def optimizers_to_edge(cfg: dict[str, Any]) -> Any:
    return qe.EdgeOptimizersConfig(
        deleted_threshold=cfg.get("deleted_threshold"),
        vacuum_min_vector_number=cfg.get("vacuum_min_vector_number"),
        default_segment_number=cfg.get("default_segment_number"),
        max_segment_size=cfg.get("max_segment_size"),
        indexing_threshold=cfg.get("indexing_threshold"),
    )


@dataclass
class CollectionSettings:
    """Everything of a collection's config besides its name and shard placement."""

    vectors: dict[str, VectorParams]
    sparse_vectors: dict[str, SparseParams] = field(default_factory=dict)
    hnsw_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_HNSW))
    optimizer_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZERS))
    quantization_config: dict[str, Any] | None = None
    on_disk_payload: bool = True

    @property
    def unnamed(self) -> bool:
        return list(self.vectors) == [""]

    def vectors_api(self) -> Any:
        if self.unnamed:
            return self.vectors[""].to_api()
        return {name: v.to_api() for name, v in self.vectors.items()}

    def edge_config(self) -> Any:
        """EdgeConfig for our shards: no WAL (flush is our durability point, and an
        open WAL preallocates 64 MiB of segment files per shard)."""
        if self.unnamed:
            vectors: Any = self.vectors[""].to_edge()
        else:
            vectors = {name: v.to_edge() for name, v in self.vectors.items()}
        return qe.EdgeConfig(
            vectors=vectors if self.vectors else None,
            sparse_vectors={n: s.to_edge() for n, s in self.sparse_vectors.items()} or None,
            hnsw_config=hnsw_to_edge(self.hnsw_config),
            optimizers=optimizers_to_edge(self.optimizer_config),
            quantization_config=(
                quantization_to_edge(self.quantization_config) if self.quantization_config else None
            ),
            on_disk_payload=self.on_disk_payload,
            wal_enabled=False,
        )


def parse_settings(body: dict[str, Any]) -> CollectionSettings:
    """A CreateCollection body, or the ``params`` + top level of a config.json."""
    params = body.get("params") if isinstance(body.get("params"), dict) else body
    vectors = parse_vectors_config(params.get("vectors"))
    sparse = parse_sparse_config(params.get("sparse_vectors"))
    if not vectors and not sparse:
        raise _bad("a collection needs dense or sparse vectors")
    hnsw = {**DEFAULT_HNSW, **_drop_none(body.get("hnsw_config") or {})}
    optimizers = {
        **DEFAULT_OPTIMIZERS,
        **_drop_none(body.get("optimizers_config") or body.get("optimizer_config") or {}),
    }
    quant = body.get("quantization_config") or None
    if quant is not None:
        quantization_to_edge(quant)
    on_disk_payload = params.get("on_disk_payload")
    return CollectionSettings(
        vectors,
        sparse,
        hnsw,
        optimizers,
        quant,
        True if on_disk_payload is None else bool(on_disk_payload),
    )


#: Qdrant validates ``collection_name`` with ``length(min = 1, max = 255)``
#: (characters) on its collection endpoints (REST: 422 "Validation error in
#: path parameters"), and keeps each collection in a directory of that name
#: (``storage/collections/<name>``), which the file system limits to 255 bytes.
MAX_COLLECTION_NAME = 255


def check_collection_name(name: str) -> None:
    """Refuse a new collection name as Qdrant would."""
    if not 1 <= len(name) <= MAX_COLLECTION_NAME:
        raise StorageError(
            422,
            "Validation error in path parameters: [name: length must be between 1 and "
            f"{MAX_COLLECTION_NAME}, got {len(name)}]",
        )
    if len(name.encode()) > MAX_COLLECTION_NAME:
        raise StorageError(500, "Service internal error: File name too long (os error 36)")


# -- payload indexes -------------------------------------------------------------------


def parse_field_schema(raw: Any) -> Any:
    """A ``field_schema`` as Qdrant takes it (a type name, or params with ``type``) -> edge."""
    if isinstance(raw, str):
        if raw not in SCHEMA_TYPES:
            raise _bad(f"unknown payload schema type {raw!r}")
        return SCHEMA_TYPES[raw]
    if isinstance(raw, dict) and raw.get("type") in INDEX_PARAMS:
        cls, flags = INDEX_PARAMS[raw["type"]]
        unknown = set(raw) - set(flags) - {"type"}
        if unknown:
            raise _bad(f"index params {sorted(unknown)} are not supported by the test server")
        return cls(**{k: raw[k] for k in flags if raw.get(k) is not None})
    raise _bad(f"payload index schema {raw!r} is not supported by the test server")


def schema_type(raw: Any) -> str:
    return str(raw if isinstance(raw, str) else raw["type"])


def payload_index_info(raw: Any, points: int) -> dict[str, Any]:
    """``PayloadIndexInfo`` as ``GET /collections/{c}`` reports it."""
    info: dict[str, Any] = {"data_type": schema_type(raw), "points": points}
    if isinstance(raw, dict):
        info["params"] = raw
    return info


# -- vectors in points -----------------------------------------------------------------


def vector_to_edge(value: Any) -> Any:
    """A point's vector as the REST API gives it -> what qdrant-edge takes."""
    if isinstance(value, dict) and "indices" in value and "values" in value:
        return qe.SparseVector(
            [int(i) for i in value["indices"]], [float(v) for v in value["values"]]
        )
    if isinstance(value, dict):
        return {name: vector_to_edge(v) for name, v in value.items()}
    return value


def vector_to_api(value: Any) -> Any:
    """A vector read from qdrant-edge -> the REST API's JSON."""
    if isinstance(value, qe.SparseVector):
        return {"indices": list(value.indices), "values": list(value.values)}
    if isinstance(value, dict):
        return {name: vector_to_api(v) for name, v in value.items()}
    return value
