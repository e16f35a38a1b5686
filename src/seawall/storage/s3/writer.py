"""Streaming atomic writes to S3: a multipart upload completed only on success.

S3 gives the atomicity the local backend builds from rename: an object
appears under its key when ``CompleteMultipartUpload`` (or a single
``PutObject``) succeeds, never before, and an aborted upload leaves nothing
under the key. So the writer fills one part, hands full parts to a small
pool (at most ``max_in_flight`` parts in flight) and completes the upload
only when the ``with`` block exits cleanly. An exception aborts the upload.

Memory: part buffers are ``bytearray``s of the part size, allocated once
and reused (at most ``max_in_flight + 1`` of them: the parts in flight and
the one being filled), so a multi-GiB upload holds a fixed
``(max_in_flight + 1) * part_size`` whatever the object's size; the part
size doubles only every 1,000 parts, past 7.8 GiB. Reuse matters beyond
the count: a fresh 8 MiB ``bytes`` per part meant page faults, the kernel
zeroing every page again, and glibc's growing mmap threshold keeping freed
parts on the heap (RSS above the sum of the live buffers); a caller's chunk
is copied once, into the buffer, and the buffer is the request body. A
``bytearray`` body also goes out as one ``sendall``: botocore wraps a
``bytes`` body in a ``BytesIO``, which it then reads in 128 KiB blocks (one
more copy of every byte) after an ``Expect: 100-continue`` round trip per
part. Without that header a part the server refuses (an expired key, an
upload aborted by prune) is refused after its body was sent rather than
before: 8 MiB of wasted bandwidth on a failure, the same error.

An object that fits in one part is sent as one ``PutObject``: a WAL
segment or a manifest costs one request, not three.

Integrity: every part and every single put carries an S3 checksum header
computed here; the server recomputes it and refuses a body whose bytes
changed on the way (``BadDigest``, retried since we still hold the bytes).
Parts carry ``x-amz-checksum-crc32`` (:data:`PART_CHECKSUM`), a single put
(a manifest, a lock, anything of one part or less) ``x-amz-checksum-sha256``.
Why not sha256 on parts too: the pipeline already hashes every stored byte
with sha256 for the manifest, and a second, per-part sha256 pass (in this
process, and again in the server's check) was the whole of what the store
path spent beyond ``upload_file`` (ADR 0011, addendum 3). A CRC catches
what goes wrong on the way (a flipped bit, a torn or misordered body); the
artifact as a whole is bound by the manifest's sha256, checked by
``verify`` and by every restore before the sink sees a byte (ADR 0016), and
by age's MACs. The manifest itself, the root of that chain, is a single
put and keeps the cryptographic header. The signed header is also why
bodies go out as ``UNSIGNED-PAYLOAD`` (``S3Storage.data_client``): SigV4's
payload hash would be one more sha256 pass. A slot for the next part frees
when any part in flight is done, not only the oldest (one slow part must
not idle the rest).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from botocore.exceptions import ClientError

from seawall.storage.s3.retry import error_code

#: S3's floor for every part but the last
MIN_PART_SIZE = 5 * 1024 * 1024
#: S3's ceiling on the number of parts of one upload
MAX_PARTS = 10_000
#: the part size doubles every this many parts: a stream's size is unknown up
#: front, and 10,000 fixed 8 MiB parts would cap an object at 78 GiB. This way
#: objects up to 7.8 GiB keep 8 MiB parts (and ~40 MiB of buffers), memory grows
#: with the log of the size beyond, and S3's 5 TiB object limit is reachable
GROW_EVERY = 1_000
#: S3's ceiling on one part
MAX_PART_SIZE = 5 * 1024**3

#: the checksum each part of a multipart upload carries (S3's algorithm name)
PART_CHECKSUM = "CRC32"

Call = Callable[[str, Callable[[], Any]], Any]


def sha256_b64(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def crc32_b64(data: bytes | bytearray) -> str:
    """S3's ``ChecksumCRC32``: the big-endian CRC-32 (zlib's), base64.

    ``zlib.crc32`` releases the GIL on large buffers, so parts are summed in
    the part threads while the pipeline goes on.
    """
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


#: algorithm -> (request parameter / response key, function)
CHECKSUMS: dict[str, tuple[str, Callable[[bytes | bytearray], str]]] = {
    "CRC32": ("ChecksumCRC32", crc32_b64),
    "SHA256": ("ChecksumSHA256", sha256_b64),
}


class MultipartWriter:
    """A write-only file object whose bytes become one S3 object on :meth:`commit`."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        call: Call,
        abort_call: Call,
        *,
        part_size: int,
        max_in_flight: int,
        checksums: bool,
        extra: dict[str, str],
        data_client: Any = None,
        part_checksum: str = PART_CHECKSUM,
    ) -> None:
        self._client = client
        #: the client that sends part and object bodies (S3Storage gives one that
        #: does not sign payloads when our checksum header covers them)
        self._data = data_client if data_client is not None else client
        self._bucket = bucket
        self._key = key
        self._call = call
        self._abort_call = abort_call
        self._part_size = max(part_size, MIN_PART_SIZE)
        self._max_in_flight = max(1, max_in_flight)
        self._checksums = checksums
        #: parts' checksum (a single put always carries sha256)
        self._part_field, self._part_sum = CHECKSUMS[part_checksum]
        self._part_algorithm = part_checksum
        self._extra = extra
        #: before the first part is full: the caller's chunks (an object that
        #: fits in one part is one PutObject and never allocates a part buffer)
        self._chunks: list[bytes] = []
        self._buffered = 0
        #: the part being filled and how much of it is
        self._buf: bytearray | None = None
        self._fill = 0
        #: buffers of finished parts, reused for the next ones
        self._spare: list[bytearray] = []
        self._allocated = 0
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: parts in flight and the buffer each one is sending
        self._pending: dict[Future[dict[str, Any]], bytearray] = {}
        self._parts: list[dict[str, Any]] = []
        self._next_part = 1
        self.size = 0
        self.closed = False

    # -- file-object surface used by the pipeline
    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        """Nothing to flush: bytes reach S3 part by part, durability comes with commit."""

    def tell(self) -> int:
        return self.size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("write to a closed S3 writer")
        n = len(data)
        if not n:
            return 0
        self.size += n
        if self._upload_id is None and self._buf is None:
            # the caller may reuse its buffer (bytearray, memoryview): keep a copy
            self._chunks.append(data if isinstance(data, bytes) else bytes(data))
            self._buffered += n
            if self._buffered >= self._current_part_size():
                # more than one part: from here on bytes go into part buffers
                chunks, self._chunks, self._buffered = self._chunks, [], 0
                for chunk in chunks:
                    self._copy_in(memoryview(chunk))
            return n
        self._copy_in(memoryview(data).cast("B"))
        return n

    def _copy_in(self, view: memoryview) -> None:
        """Copy ``view`` into part buffers, sending each one that fills up."""
        while view:
            if self._buf is None:
                self._buf, self._fill = self._free_buffer(), 0
            take = min(len(self._buf) - self._fill, len(view))
            self._buf[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == len(self._buf):
                buf, self._buf = self._buf, None
                self._submit(buf, buf)

    def _free_buffer(self) -> bytearray:
        """A buffer for the next part: a spare one, a new one, or one freed by a finished part."""
        size = self._current_part_size()
        while True:
            while self._spare:
                buf = self._spare.pop()
                if len(buf) == size:
                    return buf
                self._allocated -= 1  # the part size grew: drop the smaller buffer
            if self._allocated < self._max_in_flight + 1:
                self._allocated += 1
                return bytearray(size)
            self._reap(block=True)

    def _reap(self, *, block: bool) -> None:
        """Collect finished parts (waiting for at least one if ``block``); reuse their buffers.

        A slot frees when ANY part is done, not when the oldest is: one slow
        part must not idle the other connections (head-of-line blocking).
        """
        if block:
            done = wait(self._pending, return_when=FIRST_COMPLETED).done
        else:
            done = {fut for fut in self._pending if fut.done()}
        for fut in done:
            buf = self._pending.pop(fut)
            self._parts.append(fut.result())
            self._spare.append(buf)

    def _current_part_size(self) -> int:
        grown = self._part_size * 2 ** ((self._next_part - 1) // GROW_EVERY)
        return int(min(grown, MAX_PART_SIZE))

    # -- multipart machinery
    def _checksum(self, data: bytes | bytearray) -> dict[str, str]:
        """A single put's checksum: sha256 (small objects; manifests among them)."""
        return {"ChecksumSHA256": sha256_b64(data)} if self._checksums else {}

    def _part_checksum(self, data: bytes | bytearray) -> dict[str, str]:
        return {self._part_field: self._part_sum(data)} if self._checksums else {}

    def _start(self) -> None:
        kw: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key, **self._extra}
        if self._checksums:
            kw["ChecksumAlgorithm"] = self._part_algorithm
        resp = self._call(
            f"starting the upload of {self._key}",
            lambda: self._client.create_multipart_upload(**kw),
        )
        self._upload_id = str(resp["UploadId"])
        self._pool = ThreadPoolExecutor(self._max_in_flight, thread_name_prefix="s3-part")

    def _upload_part(self, number: int, data: bytes | bytearray) -> dict[str, Any]:
        sums = self._part_checksum(data)
        resp = self._call(
            f"part {number} of {self._key}",
            lambda: self._data.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
                **sums,
            ),
        )
        part: dict[str, Any] = {"PartNumber": number, "ETag": resp["ETag"]}
        if self._checksums:
            field = self._part_field
            part[field] = resp.get(field) or sums[field]
        return part

    def _submit(self, body: bytearray, buf: bytearray) -> None:
        """Send ``body`` (``buf`` itself, or the copy of a last, shorter part) as the next part."""
        if self._upload_id is None:
            self._start()
        if self._next_part > MAX_PARTS:
            raise ValueError(f"{self._key}: more than {MAX_PARTS} parts; raise the part size")
        while len(self._pending) >= self._max_in_flight:
            self._reap(block=True)
        assert self._pool is not None
        self._pending[self._pool.submit(self._upload_part, self._next_part, body)] = buf
        self._next_part += 1

    def commit(self) -> None:
        """Send what is left and make the object appear (one request when it is small)."""
        self.closed = True
        if self._upload_id is None and self._buf is None:
            body = b"".join(self._chunks)
            self._chunks, self._buffered = [], 0
            self._call(
                f"writing {self._key}",
                lambda: self._data.put_object(
                    Bucket=self._bucket,
                    Key=self._key,
                    Body=body,
                    **self._checksum(body),
                    **self._extra,
                ),
            )
            return
        if self._buf is not None and self._fill:
            # the last part is shorter: send a copy of its bytes (botocore takes
            # a whole bytearray as a body, not a view of one)
            buf, self._buf = self._buf, None
            self._submit(bytearray(memoryview(buf)[: self._fill]), buf)
        while self._pending:
            self._reap(block=True)
        self._shutdown()
        self._spare.clear()
        parts = sorted(self._parts, key=lambda p: int(p["PartNumber"]))
        self._complete(parts)

    def _complete(self, parts: list[dict[str, Any]]) -> None:
        def complete() -> Any:
            try:
                return self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except ClientError as exc:
                # A retried Complete whose first attempt succeeded (the answer was
                # lost): the upload is gone and the object is there with our size.
                if error_code(exc) == "NoSuchUpload" and self._landed():
                    return None
                raise

        self._call(f"completing the upload of {self._key}", complete)

    def _landed(self) -> bool:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=self._key)
        except ClientError:
            return False
        return int(head.get("ContentLength", -1)) == self.size

    def abort(self) -> None:
        """Drop everything: queued parts are cancelled, the upload is aborted (best effort)."""
        self.closed = True
        self._chunks, self._buffered = [], 0
        self._buf = None
        for fut in self._pending:
            fut.cancel()
        for fut in self._pending:
            with contextlib.suppress(BaseException):
                fut.result()
        self._pending.clear()
        self._spare.clear()
        self._shutdown()
        if self._upload_id is not None:
            upload_id = self._upload_id
            with contextlib.suppress(Exception):
                # prune removes what survives this (list_partials reports it)
                self._abort_call(
                    f"aborting the upload of {self._key}",
                    lambda: self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=self._key, UploadId=upload_id
                    ),
                )

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
