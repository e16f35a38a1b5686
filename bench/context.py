"""What every suite shares: options, temp dirs, keys, the cluster, seawall.

Everything a suite creates is registered here and removed by ``close()``,
which ``__main__`` calls from a ``finally`` (also on Ctrl-C and SIGTERM).
The seawall invocation and its environment are defined in exactly one place
(``seawall_cmd`` / ``seawall_env``) so a change of CLI shape is one edit.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import datagen
from bench.cluster import Cluster, cache_dir, chown_postgres, make_tmpdir
from bench.measure import last_line

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"


@dataclass
class Options:
    size_mb: int = 1024
    repeat: int = 3
    sustained_s: float = 60.0
    wal_segments: int = 20
    catalog_backups: int = 10_000
    catalog_wal: int = 100_000
    vectors: int = 50_000
    vector_dim: int = 384
    qdrant_snapshot_mb: int = 2048
    no_cache: bool = False
    timeout_s: float = 900.0


class Context:
    """Shared state of one bench run."""

    def __init__(self, opts: Options, log: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._stack = contextlib.ExitStack()
        self.root = make_tmpdir("seawall-bench-run-")
        self.root.chmod(0o755)
        self._stack.callback(shutil.rmtree, self.root, True)
        self._cluster: Cluster | None = None
        self._keys: tuple[Path, str] | None = None
        # a BACKUP_DIR that seawall wal-push wrote into (set by the wal suite)
        self.wal_layout_sample: Path | None = None
        # things a suite built that a later one may reuse (e.g. the catalog)
        self.shared: dict[str, Any] = {}

    # --- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        self._stack.close()

    def defer(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` at close (LIFO); exceptions are swallowed."""

        def _safe() -> None:
            with contextlib.suppress(Exception):
                fn()

        self._stack.callback(_safe)

    def tmpdir(self, name: str, *, for_postgres: bool = False) -> Path:
        """A fresh directory under the run root (removed with it)."""
        path = self.root / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        if for_postgres:
            chown_postgres(path)
        return path

    # --- keys --------------------------------------------------------------

    def age_keys(self) -> tuple[Path, str]:
        """(identity file, recipient) made by the stock age-keygen."""
        if self._keys is None:
            keydir = self.tmpdir("keys")
            keyfile = keydir / "identity.txt"
            subprocess.run(["age-keygen", "-o", str(keyfile)], check=True, capture_output=True)
            recipient = subprocess.run(
                ["age-keygen", "-y", str(keyfile)], check=True, capture_output=True, text=True
            ).stdout.strip()
            keydir.chmod(0o755)
            keyfile.chmod(0o644)  # archive_command runs as postgres and may read it
            self._keys = (keyfile, recipient)
        return self._keys

    # --- the cluster with generated data -------------------------------------

    def cluster(self) -> Cluster:
        """The bench cluster with ``size_mb`` of data, from the cache if any."""
        if self._cluster is not None:
            return self._cluster
        key = f"v{datagen.DATAGEN_VERSION}-{self.opts.size_mb}mb"
        cached = cache_dir(key) / "data"
        if cached.is_dir() and (cached / "PG_VERSION").exists() and not self.opts.no_cache:
            self.log(f"cluster: copying cached data dir {cached}")
            cluster = Cluster.from_template(cached)
            self.defer(cluster.destroy)
            cluster.start()
        else:
            cluster = Cluster.create()
            self.defer(cluster.destroy)
            cluster.start()
            datagen.generate(cluster, self.opts.size_mb, self.log)
            if not self.opts.no_cache:
                cluster.stop()
                self.log(f"cluster: caching data dir as {cached}")
                tmp = cached.parent.with_name(cached.parent.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                subprocess.run(["cp", "-a", str(cluster.datadir), str(tmp / "data")], check=True)
                shutil.rmtree(cached.parent, ignore_errors=True)
                tmp.rename(cached.parent)
                cluster.start()
        self._cluster = cluster
        self.log(f"cluster: 127.0.0.1:{cluster.port} datadir {cluster.datadir}")
        return cluster

    # --- seawall -------------------------------------------------------------

    def seawall_cmd(self) -> list[str]:
        exe = VENV_BIN / "seawall"
        if exe.exists():
            return [str(exe)]
        return [str(VENV_BIN / "python"), "-m", "seawall"]

    def seawall_env(self, backup_dir: Path, **extra: str) -> dict[str, str]:
        """The environment every seawall command of the bench runs with."""
        keyfile, recipient = self.age_keys()
        env = dict(os.environ)
        env.update(
            {
                "BACKUP_DIR": str(backup_dir),
                "COMPRESSION": "zstd",
                "ENCRYPTION": "true",
                "ENCRYPTION_RECIPIENTS": recipient,
                "ENCRYPTION_IDENTITY_FILE": str(keyfile),
                "VERIFY_BACKUP": "false",
                "PRUNE_AFTER_BACKUP": "false",
                "LOG_FORMAT": "json",
            }
        )
        if not (VENV_BIN / "seawall").exists():  # not installed: run from the tree
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
            )
        if self._cluster is not None:
            env.update(self._cluster.libpq_env())
            # wal-push checks the segment's system identifier against PGDATA
            env["PGDATA"] = str(self._cluster.datadir)
        env.update(extra)
        return env

    def seawall_archive_command(self, backup_dir: Path) -> str:
        """archive_command pushing into ``backup_dir`` (runs as postgres via sh)."""
        env = self.seawall_env(backup_dir)
        keep = (
            "BACKUP_DIR",
            "COMPRESSION",
            "ENCRYPTION",
            "ENCRYPTION_RECIPIENTS",
            "PGDATA",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "LOG_FORMAT",
            "PYTHONPATH",
        )
        assigns = " ".join(f"{k}={shlex.quote(env[k])}" for k in keep if k in env)
        return f"env {assigns} {shlex.join(self.seawall_cmd())} postgres wal-push %p"

    def seawall_unavailable(self, *args: str) -> str | None:
        """None if ``seawall ARGS --help`` works, else a one-line reason."""
        env = dict(os.environ)
        if not (VENV_BIN / "seawall").exists():
            env["PYTHONPATH"] = str(REPO / "src")
        try:
            proc = subprocess.run(
                [*self.seawall_cmd(), *args, "--help"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO,
                env=env,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"not available ({exc})"
        if proc.returncode != 0:
            line = last_line(proc.stderr or proc.stdout) or f"exit {proc.returncode}"
            return f"not available (error: {line})"
        return None
