"""``BASE_BACKUP`` over a replication connection, one archive at a time.

Why not pg_basebackup: it writes to stdout only when the cluster has no
tablespace ("can only write single tablespace to stdout"), and with ``-D
dir -Ft`` it writes files into a directory that must be empty or new, so
no FIFO can be put there first: the whole backup would be staged on disk.
The server's own protocol (PostgreSQL 15+, ``BASE_BACKUP`` with the new
option syntax) sends every archive in one COPY stream, one after the other:
``n`` (a new archive: its name and tablespace location), ``d`` (archive
bytes), ``p`` (progress), ``m`` (the backup manifest follows). The main data
directory comes last, then the manifest. Each archive is handed to the
pipeline as it arrives (:meth:`BaseBackupStream.read` returns ``b""`` at
its end), so nothing is staged on disk (docs/adr/0019).

The socket is waited on with ``select`` (libpq's non-blocking reads), so
the compression and encryption threads keep running while the server is
slow; libpq's blocking calls would hold the GIL.
"""

from __future__ import annotations

import select
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from seawall.errors import SourceUnavailableError
from seawall.pipeline.pumped import QueuedReader
from seawall.pipeline.tarscan import BLOCK, TarStructureError
from seawall.postgres.tools.base import ConnParams

#: the end-of-archive marker the server writes after each archive
TRAILER = b"\0" * (2 * BLOCK)


def _one_line(message: bytes) -> str:
    """libpq's messages span lines ("server closed the connection … \n\tThis
    probably means …"); errors are one line."""
    return " ".join(message.decode(errors="replace").split())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def base_backup_command(label: str, *, fast_checkpoint: bool) -> str:
    """The replication command: tablespace_map instead of pg_tblspc symlinks
    (a restore writes it with the mapped locations), a CRC32C manifest, and
    no WAL (it comes from the archive, as with pg_basebackup -X none)."""
    opts = [
        f"LABEL {_quote(label)}",
        f"CHECKPOINT {_quote('fast' if fast_checkpoint else 'spread')}",
        "MANIFEST 'yes'",
        "MANIFEST_CHECKSUMS 'CRC32C'",
        "TABLESPACE_MAP",
        "WAIT true",
    ]
    return f"BASE_BACKUP ({', '.join(opts)})"


@dataclass
class Archive:
    """One archive of the stream: ``base.tar`` or ``<oid>.tar``."""

    name: str
    location: str  # the tablespace directory; "" for the main data directory

    @property
    def oid(self) -> int | None:
        stem = self.name.removesuffix(".tar")
        return int(stem) if stem.isdigit() else None


@dataclass
class BaseBackupStream:
    """A running ``BASE_BACKUP``; :meth:`open` starts it."""

    pgconn: Any
    tablespaces: list[tuple[int, str]] = field(default_factory=list)
    start_lsn: str = ""
    manifest: bytes | None = None
    _pending: bytes | None = None  # a message read past the current archive
    _in_archive: bool = False
    _done: bool = False
    _closed: bool = False
    #: set by :meth:`close`: a reader thread still waiting on the socket stops
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    progress_bytes: int = 0

    @classmethod
    def open(cls, conn: ConnParams, label: str, *, fast_checkpoint: bool) -> BaseBackupStream:
        from psycopg import pq
        from psycopg.conninfo import make_conninfo

        # libpq's own quoting (a quote or backslash is escaped with a backslash;
        # SQL's doubled quote would end the value and leak its rest into the error)
        dsn = make_conninfo("", **conn.conninfo(), replication="database")
        pgconn = pq.PGconn.connect(dsn.encode())
        if pgconn.status != pq.ConnStatus.OK:
            msg = pgconn.error_message.decode(errors="replace").strip()
            pgconn.finish()
            raise SourceUnavailableError(
                f"postgresql: cannot open a replication connection to {conn.describe()}: {msg}"
                " (the user needs REPLICATION and pg_hba.conf a replication line)"
            )
        stream = cls(pgconn)
        try:
            pgconn.send_query(base_backup_command(label, fast_checkpoint=fast_checkpoint).encode())
            start = stream._result(pq.ExecStatus.TUPLES_OK)
            stream.start_lsn = start.get_value(0, 0).decode()
            spaces = stream._result(pq.ExecStatus.TUPLES_OK)
            for row in range(spaces.ntuples):
                oid = spaces.get_value(row, 0)
                if oid is not None:
                    loc = spaces.get_value(row, 1) or b""
                    stream.tablespaces.append((int(oid), loc.decode(errors="surrogateescape")))
            stream._result(pq.ExecStatus.COPY_OUT)
        except BaseException:
            stream.close()
            raise
        return stream

    # --- libpq without holding the GIL -----------------------------------------

    def _wait(self) -> None:
        import psycopg

        if self.stop.is_set():
            raise SourceUnavailableError("postgresql: BASE_BACKUP stopped: the backup failed")
        select.select([self.pgconn.socket], [], [], 0.5)
        try:
            self.pgconn.consume_input()
        except psycopg.Error:
            raise self._error("the connection broke") from None

    def _error(self, what: str) -> SourceUnavailableError:
        msg = _one_line(self.pgconn.error_message)
        return SourceUnavailableError(
            f"postgresql: BASE_BACKUP failed: {what}: {msg or 'no reason'}"
        )

    def _result(self, want: Any) -> Any:
        while self.pgconn.is_busy():
            self._wait()
        res = self.pgconn.get_result()
        if res is None or res.status != want:
            detail = _one_line(res.error_message) if res else ""
            raise SourceUnavailableError(
                f"postgresql: BASE_BACKUP failed: {detail or 'unexpected server reply'}"
            )
        return res

    def _ended(self, what: str) -> Exception:
        """The COPY ended where it must not: the server's error when it sent one.

        Why: an ErrorResponse mid-COPY (a file it cannot read, the backup
        cancelled) ends the COPY for libpq, which returns the error as the
        next result; without it the operator learns no file and no reason."""
        from psycopg import pq

        while self.pgconn.is_busy():
            self._wait()
        res = self.pgconn.get_result()
        if res is not None and res.status == pq.ExecStatus.FATAL_ERROR:
            detail = _one_line(res.error_message)
            return SourceUnavailableError(f"postgresql: BASE_BACKUP failed: {detail}")
        return TarStructureError(what)

    def _message(self) -> bytes | None:
        """The next CopyData message, or None at the end of the COPY."""
        if self._pending is not None:
            msg, self._pending = self._pending, None
            return msg
        while True:
            n, data = self.pgconn.get_copy_data(1)
            if n > 0:
                return bytes(data)
            if n == 0:
                self._wait()
                continue
            if n == -1:
                return None
            raise self._error("the server stopped sending")

    # --- archives ----------------------------------------------------------------

    def next_archive(self) -> Archive | None:
        """Move to the next archive; None once the manifest (the last part) begins."""
        while True:
            msg = self._message()
            if msg is None:
                raise self._ended("BASE_BACKUP ended before the backup manifest")
            kind = msg[:1]
            if kind == b"n":
                parts = msg[1:].split(b"\0")
                self._in_archive = True
                return Archive(parts[0].decode(), parts[1].decode(errors="surrogateescape"))
            if kind == b"m":
                self._in_archive = False
                return None
            if kind == b"p":
                self.progress_bytes = int.from_bytes(msg[1:9], "big")
                continue
            raise TarStructureError(f"BASE_BACKUP sent {kind!r} outside an archive")

    def read(self, n: int = -1) -> bytes:
        """Bytes of the current archive; ``b""`` at its end."""
        while self._in_archive:
            msg = self._message()
            if msg is None:
                raise self._ended("BASE_BACKUP ended inside an archive")
            kind = msg[:1]
            if kind == b"d":
                return msg[1:]
            if kind == b"p":
                self.progress_bytes = int.from_bytes(msg[1:9], "big")
                continue
            self._pending = msg
            self._in_archive = False
        return b""

    def read_manifest(self) -> bytes:
        """The backup manifest (after :meth:`next_archive` returned None)."""
        if self.manifest is None:
            chunks = []
            while (msg := self._message()) is not None:
                if msg[:1] == b"d":
                    chunks.append(msg[1:])
            self.manifest = b"".join(chunks)
        return self.manifest

    def finish(self) -> str:
        """Read the server's end of the backup; returns the end LSN."""
        from psycopg import pq

        self.read_manifest()
        end = self._result(pq.ExecStatus.TUPLES_OK)
        lsn: str = end.get_value(0, 0).decode()
        self._result(pq.ExecStatus.COMMAND_OK)
        while self.pgconn.is_busy():
            self._wait()
        while self.pgconn.get_result() is not None:
            pass
        self._done = True
        return lsn

    def close(self) -> None:
        """Stop and wait for reader threads (they use the connection), then close it."""
        self.stop.set()
        for thread in self._threads:
            thread.join()
        if not self._closed:
            self._closed = True
            self.pgconn.finish()


def manifest_member(manifest: bytes) -> bytes:
    """``backup_manifest`` as a tar member plus the end-of-archive marker, as
    pg_basebackup injects it into base.tar (verify and restore read it there)."""
    info = tarfile.TarInfo("backup_manifest")
    info.size = len(manifest)
    info.mode = 0o600
    info.mtime = int(time.time())
    pad = (-len(manifest)) % BLOCK
    return info.tobuf(format=tarfile.USTAR_FORMAT) + manifest + b"\0" * pad + TRAILER


class ArchiveReader:
    """The current archive as a file-like reader for the pipeline (``read(n)``
    returns at most ``n`` bytes, ``b""`` only at the end).

    For ``base.tar`` (``inject_manifest``) the server's end-of-archive marker
    is held back, the manifest read, and ``backup_manifest`` appended as the
    last member before a new marker.
    """

    def __init__(self, stream: BaseBackupStream, *, inject_manifest: bool) -> None:
        self._stream = stream
        self._inject = inject_manifest
        self._buf = bytearray()
        self._eof = False

    def _fill(self, want: int) -> None:
        """Read until ``want`` bytes besides the held-back marker are buffered,
        or the end (the server sends messages of a few kB: the pipeline gets
        chunks of the size it asked for)."""
        keep = len(TRAILER) if self._inject else 0
        while not self._eof and len(self._buf) < keep + want:
            data = self._stream.read()
            if data:
                self._buf += data
                continue
            self._eof = True
            if self._inject:
                if bytes(self._buf[-len(TRAILER) :]) != TRAILER or len(self._buf) < len(TRAILER):
                    raise TarStructureError(
                        "base.tar from the server does not end with a tar trailer"
                    )
                del self._buf[-len(TRAILER) :]
                if self._stream.next_archive() is not None:
                    raise TarStructureError("the server sent an archive after base.tar")
                self._buf += manifest_member(self._stream.read_manifest())

    def read(self, n: int = -1) -> bytes:
        self._fill(n if n > 0 else 1 << 20)
        keep = 0 if self._eof or not self._inject else len(TRAILER)
        avail = len(self._buf) - keep
        take = avail if n < 0 else min(n, avail)
        out = bytes(self._buf[:take])
        del self._buf[:take]
        return out


class PumpedReader(QueuedReader):
    """Reads an archive in its own thread into a bounded queue (8 chunks of
    1 MiB), so the server keeps streaming while the pipeline compresses and
    encrypts: pulled in the pipeline's thread, every wait on the network
    would also be a pause of the compressor (what ``ScanningReader`` does
    for pg_basebackup's pipe). The thread is registered with the stream,
    whose :meth:`BaseBackupStream.close` stops it before closing the
    connection (libpq must not be used from two threads at once)."""

    def __init__(self, stream: BaseBackupStream, src: ArchiveReader, depth: int = 8) -> None:
        super().__init__(src, name="basebackup-reader", depth=depth, stop=stream.stop)
        stream._threads.append(self._thread)
