"""A file sink whose bytes appear under their name only once the artifact checked out.

Why: invariant 4 says no byte of an artifact reaches a consumer before its
sha256 matches the manifest. When the consumer reads a *file* (pg_restore
-j's decoded dump, a Qdrant snapshot file, ``--output``), it cannot see the
file before it exists under its name. So the artifact can be decoded WHILE
it is downloaded and hashed, into a hidden temporary beside the
destination, and renamed into place only when ``decode_to`` found the
sha256 right (ADR 0016, addendum): one pass, download and decode
overlapping, no spool of the encoded bytes. A stream consumer (psql, tar)
cannot be held back like this and keeps the spool.

The temporary is an unnamed file (``O_TMPFILE``, mode 0600) in the
destination's directory, given its name by ``linkat`` at commit, so even a
kill -9 leaves nothing; where the file system has no ``O_TMPFILE`` it is
``.<name>.partial-<random>`` there, renamed at commit and removed on every
failure. :meth:`StagedFile.commit` refuses unless ``decode_to``
marked the content :meth:`checked <StagedFile.mark_checked>`, so a caller
cannot publish bytes that were never compared with the manifest.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import Self

from seawall.errors import StorageError

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
#: file systems without O_TMPFILE answer one of these: a named hidden file then
_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)


class StagedFile:
    """Write-only sink for ``decode_to``: hidden until :meth:`commit` renames it to ``dest``.

    ``expected_size`` (the manifest's ``raw_size``) is checked against the
    directory's free space before anything is written, so a disk that is
    too small is refused before the download starts. Use as a context
    manager: leaving the block without :meth:`commit` removes the temporary.
    ``fix`` ends the one-line error of a full disk (what the operator can do).
    """

    def __init__(
        self,
        dest: Path,
        expected_size: int | None = None,
        *,
        raw_hash: bool = False,
        fix: str = "free space there or set TMPDIR to a directory with room",
        unusable_fix: str = "set TMPDIR to a writable directory",
    ) -> None:
        self.dest = dest
        self._fix = fix
        self._unusable_fix = unusable_fix
        #: sha256 of the decoded bytes (``raw_hash=True``), for the manifest's ``raw_sha256``
        self.raw_hash = hashlib.sha256() if raw_hash else None
        self.expected_size = expected_size
        self.tmp = dest.with_name(f".{dest.name}.partial-{secrets.token_hex(4)}")
        self._what = dest.name
        self._fd: int | None = None
        self._anonymous = False
        self._checked: str | None = None
        self.size = 0

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None or self.tmp.exists():
            self.discard()

    def open(self) -> None:
        """Create the hidden temporary (after checking the room for ``expected_size``)."""
        where = self.dest.parent
        if self.expected_size:
            try:
                st = os.statvfs(where)
            except OSError as exc:
                raise self._unusable(exc) from exc
            free = st.f_bavail * st.f_frsize
            if free < self.expected_size:
                raise self._full(free)
        try:
            try:
                # no name at all until commit: a kill -9 leaves nothing behind
                self._fd = os.open(where, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)
                self._anonymous = True
            except OSError as exc:
                if exc.errno not in _NO_TMPFILE:
                    raise
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                self._fd = os.open(self.tmp, flags, 0o600)
        except OSError as exc:
            if exc.errno in _FULL:
                raise self._full(None) from exc
            raise self._unusable(exc) from exc

    def reset(self) -> None:
        """Start again from byte 0 (the next repository's copy, with MIRRORS)."""
        assert self._fd is not None, "StagedFile is not open"
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self.size = 0
        self._checked = None
        if self.raw_hash is not None:
            self.raw_hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        assert self._fd is not None, "StagedFile is not open"
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            if exc.errno in _FULL:
                raise self._full(None) from exc
            raise StorageError(
                f"cannot write the decoded {self._what} in {self.dest.parent} ({exc.strerror})"
            ) from exc
        if self.raw_hash is not None:
            self.raw_hash.update(data)
        self.size += len(data)
        return len(data)

    def mark_checked(self, sha256: str) -> None:
        """Called by ``decode_to`` once the stored bytes matched the manifest's sha256."""
        self._checked = sha256

    @property
    def checked(self) -> bool:
        return self._checked is not None

    def commit(self) -> Path:
        """Rename the checked content to ``dest``; refuses content nobody checked."""
        if self._checked is None:
            raise AssertionError(f"{self.dest}: decoded bytes were never checked against a sha256")
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            if self._anonymous:
                # linkat(AT_SYMLINK_FOLLOW) of the unnamed file: fails if dest exists.
                # A dir_fd makes os.link call linkat (plain link() would not follow)
                proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    os.link(str(fd), self.dest, src_dir_fd=proc, follow_symlinks=True)
                finally:
                    os.close(proc)
            else:
                os.rename(self.tmp, self.dest)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise StorageError(
                f"cannot name the decoded file {self.dest} ({exc.strerror}); it must not exist "
                "and its directory must be writable"
            ) from exc
        finally:
            os.close(fd)
        return self.dest

    def discard(self) -> None:
        """Close and remove the temporary; nothing appears at ``dest``."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        self.tmp.unlink(missing_ok=True)

    # -- errors --------------------------------------------------------------
    def _full(self, free: int | None) -> StorageError:
        need = f" ({self.expected_size} bytes)" if self.expected_size else ""
        have = f", {free} free" if free is not None else ""
        return StorageError(
            f"no room to decode {self._what}{need} in {self.dest.parent}{have}: restore "
            f"writes the decoded artifact there before handing it over; {self._fix}"
        )

    def _unusable(self, exc: OSError) -> StorageError:
        return StorageError(
            f"cannot write the decoded {self._what} in {self.dest.parent} ({exc.strerror}); "
            f"{self._unusable_fix}"
        )
