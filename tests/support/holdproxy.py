"""A TCP relay to an S3 server that holds or damages one WAL segment's PUT on the way.

Why not tests/support/faultproxy.py: that one faults whole connections
(503, reset, a response cut after n bytes); these tests need to act on one
*request body* in flight: hold it half sent while the server is SIGKILLed,
or flip one of its bytes so the server's checksum check is what refuses it.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from seawall.ports import free_loopback_port


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


_METHODS = (b"GET ", b"HEAD ", b"PUT ", b"POST ", b"DELETE ")


def _is_commit(first: bytes) -> bool:
    """Whether a request line commits a WAL object (see ``arm_after_commit``)."""
    if b"/postgresql/wal/" not in first or b"/mirrors/" in first or b"archive.json" in first:
        return False
    if first.startswith(b"PUT "):
        return b"uploadId=" not in first
    return first.startswith(b"POST ") and b"uploadId=" in first


class HoldingProxy:
    """A TCP relay to the S3 server that can hold one WAL segment's PUT mid-body
    (:meth:`arm`) or flip one byte of its body (``flip_armed``).

    After :meth:`arm`, the first request that starts ``PUT`` on a WAL key
    (not archive.json) is relayed up to its first chunk (the headers and
    part of the body), then held: :attr:`holding` is set, and nothing more
    is relayed until :attr:`release` is set. The test kills the server in
    between, so the server dies with a PUT in flight, for real.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_loopback_port()
        self.armed = False
        self.flip_armed = False  # flip one byte of the next WAL PUT's body
        self.flipped = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self.held_request = b""
        self.after_commit = False  # arm_after_commit
        self.committed = False
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(32)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm_after_commit(self) -> None:
        """Hold every request that starts after a WAL object's commit has been relayed.

        The commit is a ``PUT`` on a WAL key without ``uploadId`` (a whole
        object) or the ``POST ?uploadId=`` completing a multipart upload;
        mirror records (``/mirrors/``) and archive.json are not WAL objects.
        The client sends its next request only once the commit was answered,
        so a process held there has committed and done nothing since: the
        moment a ``kill -9`` between the commit and what follows it hits.
        """
        self.holding.clear()
        self.release.clear()
        self.after_commit = True
        self.committed = False

    def arm(self) -> None:
        self.holding.clear()
        self.release.clear()
        self.armed = True

    def close(self) -> None:
        self.release.set()
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()  # the server is down: the client sees the connection close
            return
        upstream.settimeout(None)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        flip_next = False
        try:
            while data := client.recv(65536):
                first = data.split(b"\r\n", 1)[0]
                wal_put = (
                    data.startswith(b"PUT ")
                    and b"/postgresql/wal/" in first
                    and b"archive.json" not in first
                )
                hold = self.armed and wal_put
                if self.flip_armed and wal_put:  # damage one byte of this PUT's body
                    self.flip_armed = False
                    end = data.find(b"\r\n\r\n")
                    if 0 <= end < len(data) - 4:
                        data = _flip(data, end + 4)
                        self.flipped += 1
                    else:
                        flip_next = True
                elif flip_next:
                    data, flip_next = _flip(data, 0), False
                    self.flipped += 1
                if self.after_commit and data.startswith(_METHODS):
                    if self.committed:  # a request after the commit: held, never sent
                        self.held_request = first
                        self.holding.set()
                        self.release.wait()
                    elif _is_commit(first):
                        self.committed = True
                upstream.sendall(data)
                if hold:
                    self.armed = False
                    self.held_request = data.split(b"\r\n", 1)[0]
                    self.holding.set()
                    self.release.wait()
        except OSError:
            pass
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
