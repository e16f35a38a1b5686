"""Ports for test and demo servers come from below the ephemeral range and
are skipped while something is bound to them (real sockets)."""

from __future__ import annotations

import socket

import pytest

from seawall.ports import PORT_RANGE, free_loopback_port


def _ephemeral_start() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        return int(fh.read().split()[0])


def test_ports_avoid_the_kernels_ephemeral_range() -> None:
    assert PORT_RANGE.stop <= _ephemeral_start()
    port = free_loopback_port()
    assert port in PORT_RANGE
    with socket.create_server(("127.0.0.1", port)):  # really free
        pass


def test_a_bound_port_is_skipped() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="no free port"):
            free_loopback_port(range(busy, busy + 1), attempts=20)
        # of two candidates, only the free one comes back
        for other in (busy - 1, busy + 1):
            try:
                with socket.create_server(("127.0.0.1", other)):
                    pass
            except OSError:
                continue
            lo, hi = sorted((busy, other))
            assert free_loopback_port(range(lo, hi + 1), attempts=50) == other
            break
