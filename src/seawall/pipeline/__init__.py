"""Streaming stages: compress (zstd/gzip/none), encrypt (age), digest (sha256).

Memory is bounded by the stages' buffers (about 1 MiB each plus zstd's
per-thread windows), never by the size of what flows through. The write side
is pull-based (the encryptor pulls compressed bytes, which pull from the
producer); the read side is push-based (the decryptor pushes into the
decompressor, which pushes into the consumer: a file, pg_restore's stdin, a
hash).
"""

from seawall.pipeline.decode import DecodeResult, decode_to, sha256_of
from seawall.pipeline.keys import KeyRing, fingerprint
from seawall.pipeline.store import PipelineSpec, StoreResult, store_stream

__all__ = [
    "DecodeResult",
    "KeyRing",
    "PipelineSpec",
    "StoreResult",
    "decode_to",
    "fingerprint",
    "sha256_of",
    "store_stream",
]
