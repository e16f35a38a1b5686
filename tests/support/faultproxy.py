"""A TCP proxy on 127.0.0.1 that injects faults into chosen connections.

Why a proxy and not a mock client: the S3 backend's retries must be proven
against what really reaches a socket — a 503 SlowDown answer, a connection
reset (RST), a response cut in the middle of the body. Bytes are relayed
untouched otherwise, so SigV4 signatures (which cover the Host header the
client sent to the proxy) still verify at the real server behind it.

Each new connection takes the next action from ``plan`` (then ``"pass"``):
``"503"`` answers ``503 SlowDown`` and closes; ``"reset"`` closes with an
RST at once; ``("cut", n)`` relays but drops the connection after ``n``
bytes of response; ``("flip", n)`` relays but flips one bit of the byte at
offset ``n`` of what the client sends (a request body damaged on the wire);
``"hang"`` accepts and reads the request but never answers (a server that
is up but stuck: no refusal, no reset, only silence); ``"pass"`` relays.
``always`` applies one action to every connection; ``after`` is the action
once ``plan`` is used up (``"pass"`` unless set).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections import deque

from seawall.ports import free_loopback_port

SLOWDOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    b"Content-Length: 118\r\n\r\n"
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
    b"<Message>Please reduce</Message></Error>\n  "
)

Action = str | tuple[str, int]


class FaultProxy:
    def __init__(self, upstream_port: int, plan: list[Action] | None = None) -> None:
        self.upstream_port = upstream_port
        self.plan: deque[Action] = deque(plan or [])
        self.always: Action | None = None
        self.after: Action = "pass"
        self.port = free_loopback_port()
        self.connections = 0
        self.faults = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self._stop = False
        self._hung: list[socket.socket] = []
        self._live: list[socket.socket] = []  # client sides of relayed connections
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            hung, self._hung = self._hung, []
        for conn in hung:  # shutdown wakes the thread blocked in recv
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def drop_live(self) -> int:
        """Close every relayed connection now (a server's idle timeout or restart, as
        the client sees it: its kept-alive connection is gone); how many there were."""
        with self._lock:
            live, self._live = self._live, []
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        return len(live)

    def _next(self) -> Action:
        with self._lock:
            self.connections += 1
            if self.always is not None:
                action: Action = self.always
            else:
                action = self.plan.popleft() if self.plan else self.after
            if action != "pass":
                self.faults += 1
            return action

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, self._next()), daemon=True).start()

    def _serve(self, conn: socket.socket, action: Action) -> None:
        if action == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if action == "hang":
            with self._lock:
                self._hung.append(conn)
            with contextlib.suppress(OSError):
                while not self._stop and conn.recv(65536):
                    pass  # swallow the request; the answer never comes
            return
        if action == "503":
            with contextlib.suppress(OSError):
                conn.recv(65536)  # the request head (and maybe some body)
                conn.sendall(SLOWDOWN)
            conn.close()
            return
        limit = action[1] if isinstance(action, tuple) and action[0] == "cut" else None
        flip = action[1] if isinstance(action, tuple) and action[0] == "flip" else None
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            conn.close()
            return
        with self._lock:
            self._live.append(conn)
        threading.Thread(target=self._pipe, args=(conn, up, None, flip), daemon=True).start()
        self._pipe(up, conn, limit)
        with self._lock, contextlib.suppress(ValueError):
            self._live.remove(conn)

    @staticmethod
    def _pipe(
        src: socket.socket, dst: socket.socket, limit: int | None, flip: int | None = None
    ) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if flip is not None and sent <= flip < sent + len(data):
                    damaged = bytearray(data)
                    damaged[flip - sent] ^= 0x01
                    data = bytes(damaged)
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    dst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
