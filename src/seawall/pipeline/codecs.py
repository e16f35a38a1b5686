"""Compression stages: pull-based compressing readers, push-based decompressing writers.

zstd runs multithreaded inside libzstd (``threads=-1`` = one worker per
core), so compressing costs no Python-level parallelism. Decompressing
writers accept concatenated frames/members, as the ``zstd`` and ``gzip`` CLIs
may produce, so files made by hand restore too.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO, Protocol

import zstandard

CHUNK = 1 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


class Sink(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


class PullReader:
    """``readable``/``readinto`` on top of a subclass's ``read(n)``.

    The pipeline's own readers (counting, prefetching, tar-scanning) hand
    bytes to consumers that call ``readinto`` (zstd, the age encryptor) or
    check ``readable``; one definition instead of a copy in each reader.
    """

    def read(self, n: int = -1) -> bytes:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _ReaderBase(io.RawIOBase):
    """A readable raw stream producing chunks from ``_produce``."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def _produce(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._buf and not self._eof:
            chunk = self._produce()
            if chunk:
                self._buf += chunk
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        del self._buf[:n]
        return n


class GzipCompressReader(_ReaderBase):
    """Pull gzip-compressed bytes out of a raw source."""

    def __init__(self, src: BinaryIO, level: int = 6) -> None:
        super().__init__()
        self._src = src
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def _produce(self) -> bytes:
        data = self._src.read(CHUNK)
        if not data:
            self._eof = True
            return self._z.flush()
        return self._z.compress(data)


#: zstd level 3 with a 4 MiB window, a larger hash table and 6-byte minimum
#: matches, for pg_dump's COPY text. Measured on the 1 GiB benchmark dump
#: (825 MB raw): 172.4 MB at plain level 3, 165.2 MB tuned (gzip -6 of the
#: plain-format dump: 166.6 MB), for ~5-10% more compression CPU. Explicit
#: 8 MiB jobs keep the two worker threads' buffers at the level-3 footprint
#: (~65 MB RSS instead of ~115 MB with the window's default job size).
TEXT_TUNING = {"window_log": 22, "hash_log": 19, "min_match": 6, "job_size": 8 << 20}


#: zstd's multithreaded job size at the default level 3. libzstd's own default
#: is four windows (8 MiB at level 3), and each worker keeps its job's input and
#: output plus the jobs queued for it: on incompressible bytes (what a backup of
#: already compressed data feeds it) 111 MB peak RSS for two workers, 55 MB with
#: 4 MiB jobs and 35 MB with 2 MiB, at the same speed. Two windows per job keep the
#: ratio: +0.04 % on a 70 MB synthetic table dump (+0.13 % at 2 MiB). Measured
#: on 512 MiB of random bytes and on the dump, issue 14 (docs/benchmarks.md).
DEFAULT_JOB_SIZE = 4 << 20


def compress_reader(
    src: BinaryIO, compression: str, level: int | None, threads: int, *, text_tuned: bool = False
) -> BinaryIO:
    """Wrap ``src`` so reading yields compressed bytes.

    ``text_tuned`` applies :data:`TEXT_TUNING` when the level is the default
    (an explicit ``COMPRESSION_LEVEL`` is used as given); otherwise the default
    level gets :data:`DEFAULT_JOB_SIZE` jobs (bounded worker memory).
    """
    if compression == "zstd":
        workers = threads or -1
        if text_tuned and level in (None, 3):
            params = zstandard.ZstdCompressionParameters.from_level(
                3, threads=workers, write_checksum=True, **TEXT_TUNING
            )
            cctx = zstandard.ZstdCompressor(compression_params=params)
        elif level in (None, 3):
            params = zstandard.ZstdCompressionParameters.from_level(
                3, threads=workers, write_checksum=True, job_size=DEFAULT_JOB_SIZE
            )
            cctx = zstandard.ZstdCompressor(compression_params=params)
        else:
            cctx = zstandard.ZstdCompressor(level=level, threads=workers, write_checksum=True)
        return cctx.stream_reader(src, read_size=CHUNK, closefd=False)
    if compression == "gzip":
        return io.BufferedReader(GzipCompressReader(src, level if level is not None else 6), CHUNK)
    if compression == "none":
        return src
    raise ValueError(f"unknown compression {compression!r}")


class ZstdDecompressWriter:
    """Push zstd bytes in, raw bytes come out to ``sink``; multi-frame safe."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._d = zstandard.ZstdDecompressor()
        self._obj = self._d.decompressobj()
        self._in_frame = False

    def write(self, data: bytes) -> int:
        view = bytes(data)
        while view:
            out = self._obj.decompress(view)
            self._in_frame = True
            if out:
                self._sink.write(out)
            if self._obj.eof:
                view = self._obj.unused_data
                self._obj = self._d.decompressobj()
                self._in_frame = bool(view)
            else:
                view = b""
        return len(data)

    def close(self) -> None:
        if self._in_frame and not self._obj.eof:
            # A frame was started and never finished: truncated input.
            flushed = self._obj.flush()
            if flushed:
                self._sink.write(flushed)
            raise zstandard.ZstdError("truncated zstd stream (frame not finished)")


class GzipDecompressWriter:
    """Push gzip bytes in (several members allowed), raw bytes out."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._z = zlib.decompressobj(47)
        self._pending = False

    def write(self, data: bytes) -> int:
        buf = bytes(data)
        while buf:
            out = self._z.decompress(buf)
            self._pending = True
            if out:
                self._sink.write(out)
            if self._z.eof:
                buf = self._z.unused_data
                self._z = zlib.decompressobj(47)
                self._pending = bool(buf)
            else:
                buf = b""
        return len(data)

    def close(self) -> None:
        if self._pending and not self._z.eof:
            raise zlib.error("truncated gzip stream")


class PassWriter:
    """No compression: pass bytes straight through."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        return len(data)

    def close(self) -> None:
        return None


class AutoDecompressWriter:
    """Detect zstd/gzip/none from the first bytes (for foreign or legacy files)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._head = b""
        self._inner: ZstdDecompressWriter | GzipDecompressWriter | PassWriter | None = None
        self.detected: str | None = None

    def write(self, data: bytes) -> int:
        if self._inner is None:
            self._head += bytes(data)
            if len(self._head) < 4:
                return len(data)
            self._start()
            return len(data)
        return self._inner.write(data)

    def _start(self) -> None:
        head, self._head = self._head, b""
        if head.startswith(ZSTD_MAGIC):
            self.detected, self._inner = "zstd", ZstdDecompressWriter(self._sink)
        elif head.startswith(GZIP_MAGIC):
            self.detected, self._inner = "gzip", GzipDecompressWriter(self._sink)
        else:
            self.detected, self._inner = "none", PassWriter(self._sink)
        if head:
            self._inner.write(head)

    def close(self) -> None:
        if self._inner is None:
            self._start()
        assert self._inner is not None
        self._inner.close()


def decompress_writer(
    sink: Sink, compression: str | None
) -> ZstdDecompressWriter | GzipDecompressWriter | PassWriter | AutoDecompressWriter:
    """A writer that decompresses into ``sink`` (``None`` = detect)."""
    if compression == "zstd":
        return ZstdDecompressWriter(sink)
    if compression == "gzip":
        return GzipDecompressWriter(sink)
    if compression == "none":
        return PassWriter(sink)
    return AutoDecompressWriter(sink)
