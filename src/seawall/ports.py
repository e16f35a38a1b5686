"""A free TCP port on the loopback interface for a server we are about to start.

Asking the kernel for port 0 and closing the socket hands out a port from
the ephemeral range (``net.ipv4.ip_local_port_range``, 32768-60999 by
default), the same range every outgoing connection takes its source port
from: between the check and the server's own bind, a client connection
elsewhere on the machine can take it ("could not create any TCP/IP
sockets" from PostgreSQL; seen in CI with tests running in parallel).
Ports are therefore drawn at random below that range, and checked.
"""

from __future__ import annotations

import random
import socket

#: below the default ephemeral range, above the well-known and most registered ports
PORT_RANGE = range(20000, 32000)


def free_loopback_port(candidates: range = PORT_RANGE, attempts: int = 200) -> int:
    """A port in ``candidates`` that nothing on 127.0.0.1 is bound to right now."""
    for _ in range(attempts):
        port = random.choice(candidates)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 in {candidates.start}-{candidates.stop - 1}")
