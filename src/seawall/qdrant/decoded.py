"""Read a stored artifact as a decoded stream (pull side of the pipeline).

The pipeline's decoder pushes into a sink; tar readers pull. A pipe and a
thread bridge the two with bounded memory (the pipe buffer plus the
stages' chunks): the decoder thread writes decoded bytes into the pipe, the
caller reads them. Errors of the decoder (sha256 mismatch, wrong key,
corrupt zstd) are re-raised in the caller when the stream is closed, and a
caller that stops reading early unblocks the decoder by closing the pipe.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

from seawall.errors import StorageError
from seawall.pipeline.decode import check_stored_size, decode_to
from seawall.pipeline.keys import KeyRing
from seawall.storage.base import Storage

PIPE_SIZE = 1024 * 1024


class _PipeSink:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        return len(data)


class HashingStream:
    """Pull reader that hashes and counts what passes (raw sha256 of the snapshot)."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1024 * 1024):
            pass


@contextmanager
def open_decoded(
    storage: Storage,
    key: str,
    keys: KeyRing | None,
    expected_sha256: str | None,
    expected_size: int | None = None,
    *,
    precheck: bool = False,
) -> Iterator[HashingStream]:
    """Yield a reader of the decoded bytes of ``key`` (sha256 checked while read).

    By default the stored bytes' sha256 is checked on the fly (no spool), so
    a mismatch surfaces when the stream ends; callers must not act on the
    content before the context exits cleanly. With ``precheck`` the decoder
    reads the object once into its spool and checks it first
    (``decode_to``): the stream yields no byte of an object that does not
    match, for callers that pass the bytes on as they read them.
    """
    if expected_size is not None:
        check_stored_size(storage, key, expected_size)  # before any byte is decoded
    rfd, wfd = os.pipe()
    with suppress(OSError, AttributeError):
        # 1 MiB instead of 64 KiB: 16x fewer wake-ups between the decoder
        # thread and the reader (Linux; unprivileged up to pipe-max-size).
        fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            decode_to(
                storage, key, _PipeSink(wfd), keys,
                expected_sha256=expected_sha256, precheck=precheck,
            )  # fmt: skip
        except BrokenPipeError:
            pass
        except StorageError as exc:
            if isinstance(exc.__cause__, BrokenPipeError):
                return
            errors.append(exc)
        except BaseException as exc:
            errors.append(exc)
        finally:
            os.close(wfd)

    thread = threading.Thread(target=work, name=f"decode-{key}", daemon=True)
    reader = os.fdopen(rfd, "rb", buffering=1024 * 1024)
    thread.start()
    stream = HashingStream(reader)
    failed: BaseException | None = None
    try:
        yield stream
    except BaseException as exc:
        failed = exc
        raise
    finally:
        if failed is None:
            with suppress(OSError):
                stream.drain()
        reader.close()
        thread.join()
        if errors:
            # The decoder's error is the root cause (e.g. a sha256 mismatch
            # makes the tar look truncated): report it rather than the symptom.
            raise errors[0]
