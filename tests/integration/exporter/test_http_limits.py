"""Half-open and idle HTTP connections cannot pile up threads in the exporter
(issue 11 item 8: 800 half-open requests left 810 threads alive).

A real ``seawall exporter`` process on 127.0.0.1 is flooded with 800
connections that each send a request without its final blank line; scrapes
must keep being answered, the process's thread count must stay bounded,
and must come back down once the clients are gone. An in-process server
with a short idle timeout shows that a connection that never completes its
request is closed by the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seawall.exporter.collector import SeawallCollector, make_registry
from seawall.exporter.server import MAX_CONNECTIONS, ExporterServer
from seawall.exporter.webconfig import WebConfigLoader
from seawall.ports import free_loopback_port
from tests.conftest import SEAWALL
from tests.integration.exporter.builders import T0, write_backup

HALF_OPEN = 800
PARTIAL = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n"  # no blank line


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def _until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return bool(predicate())  # type: ignore[operator]


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    root = tmp_path / "backups"
    write_backup(root, "postgresql", "logical", "app", finished=T0, verified=True)
    port = free_loopback_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "LOG_"))}
    env.update(BACKUP_DIR=str(root), LOG_FORMAT="json")
    proc = subprocess.Popen(
        [SEAWALL, "exporter", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _until(lambda: _healthy(port), 60), "exporter did not start"
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_half_open_flood_is_bounded(exporter: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = exporter
    baseline = _threads(proc.pid)
    clients = []
    try:
        for _ in range(HALF_OPEN):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(PARTIAL)
            clients.append(s)
        # scrapes keep being answered while the flood is open
        for _ in range(5):
            started = time.monotonic()
            res = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
            assert res.status_code == 200 and "postgres_backup_last_success_timestamp" in res.text
            assert time.monotonic() - started < 20
        busy = _threads(proc.pid)
        assert busy <= baseline + MAX_CONNECTIONS + 8, (baseline, busy)
    finally:
        for s in clients:
            s.close()
    # and the threads come back down once the clients are gone
    assert _until(lambda: _threads(proc.pid) <= baseline + 2, 30), (baseline, _threads(proc.pid))


def test_idle_connection_is_closed_by_the_server(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    write_backup(root, "postgresql", "logical", "app", finished=T0, verified=True)
    server = ExporterServer(
        ("127.0.0.1", 0),
        make_registry(SeawallCollector(root)),
        WebConfigLoader(None),
        idle_timeout=1.0,
    )
    server.start_background()
    try:
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        half = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        half.sendall(PARTIAL)
        assert _until(lambda: server.open_connections == 2, 10)
        # both are closed by the server: the client reads EOF, well before its own 30 s
        started = time.monotonic()
        assert idle.recv(1024) == b""
        assert half.recv(1024) == b""
        assert time.monotonic() - started < 20
        assert _until(lambda: server.open_connections == 0, 10)
        # a keep-alive client that goes quiet is closed too, after answering
        with httpx.Client() as client:
            assert client.get(f"http://127.0.0.1:{server.port}/metrics").status_code == 200
        idle.close()
        half.close()
    finally:
        server.stop()
