"""Finding PostgreSQL binaries and running them without leaking secrets.

Children get :func:`child_env`: the basics (PATH, HOME, locale…) and, for
libpq clients, libpq's own PG* settings, nothing else of seawall's
environment (no DB_PASSWORD, ENCRYPTION_KEY, API keys). Passwords reach
libpq tools through the environment (``PGPASSWORD``) or a passfile
(``PGPASSFILE``), never argv: argv is world-readable in
``/proc/*/cmdline`` and ends up in logs. Connection parameters go through
``PG*`` environment variables too, so that a command line in a log is safe to
paste.

Binary selection: ``pg_dump`` must be at least the server's major version,
and a restore into another major needs that major's ``pg_restore``. We look
in ``PG_BIN_DIR`` first, then Debian's ``/usr/lib/postgresql/<major>/bin``
(newest first), then ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from seawall.errors import ConfigError, SourceUnavailableError

if TYPE_CHECKING:
    from seawall.settings import Settings

DEBIAN_ROOT = Path("/usr/lib/postgresql")

#: What any child may inherit from seawall's environment: where programs
#: are, who and where it runs, locale and time zone, scratch space, Kerberos
#: for GSSAPI authentication. Everything else (DB_PASSWORD, ENCRYPTION_KEY,
#: QDRANT_API_KEY, AWS_*, SEAWALL_*, whatever the caller exported) stays
#: behind: a child's environment is readable in /proc/<pid>/environ by its
#: owner and ends up in core dumps and crash reports.
_BASIC_VARS = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "LD_LIBRARY_PATH",
     "KRB5CCNAME", "KRB5_CONFIG", "KRB5_KTNAME"}
)  # fmt: skip
#: libpq's own variables that carry connection secrets or that ConnParams sets.
_LIBPQ_SET = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGPASSFILE")


def _is_libpq_var(name: str) -> bool:
    """PGSSLMODE, PGSSLROOTCERT, PGOPTIONS, PGSERVICE…: libpq's, not seawall's
    (PG_BIN_DIR, PG_CLUSTER_NAME; PGPASSWORD_FILE is seawall's secret-file variable)."""
    return name.startswith("PG") and not name.startswith("PG_") and not name.endswith("_FILE")


def child_env(base: Mapping[str, str] | None = None, *, libpq: bool = False) -> dict[str, str]:
    """The environment for a child process: basics only, plus libpq's PG*
    settings (without the connection ones) when ``libpq``; never a secret."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in _BASIC_VARS or k.startswith("LC_")}
    if libpq:
        env.update((k, v) for k, v in source.items() if _is_libpq_var(k) and k not in _LIBPQ_SET)
    return env


@dataclass(frozen=True)
class ConnParams:
    """How to reach a PostgreSQL server. ``password`` never leaves this object
    except through :meth:`env`."""

    host: str = "localhost"
    port: int = 5432
    user: str = "postgres"
    dbname: str = "postgres"
    password: str | None = field(default=None, repr=False)
    passfile: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnParams:
        """The configured server (DB_* / PG* settings)."""
        return cls(
            host=settings.db_host,
            port=settings.db_port,
            user=settings.db_user,
            dbname=settings.db_name,
            password=settings.db_password.get_secret_value() if settings.db_password else None,
            passfile=settings.pgpassfile,
        )

    def env(
        self, base: Mapping[str, str] | None = None, dbname: str | None = None
    ) -> dict[str, str]:
        """Environment for a libpq program: :func:`child_env` (no secret but the
        password libpq needs, under PGPASSWORD) plus this connection's PG* values."""
        env = child_env(base, libpq=True)
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=self.user,
            PGDATABASE=dbname or self.dbname,
            PGAPPNAME="seawall",
            PGCONNECT_TIMEOUT=env.get("PGCONNECT_TIMEOUT", "10"),
        )
        if self.password:
            env["PGPASSWORD"] = self.password
        if self.passfile:
            env["PGPASSFILE"] = str(self.passfile)
        return env

    def describe(self, dbname: str | None = None) -> str:
        """host:port/db for messages and manifests (no secrets)."""
        return f"{self.host}:{self.port}/{dbname or self.dbname}"

    def conninfo(self, dbname: str | None = None) -> dict[str, str]:
        """psycopg connection kwargs (password included: for in-process use only)."""
        info = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "dbname": dbname or self.dbname,
            "application_name": "seawall",
            "connect_timeout": "10",
        }
        if self.password:
            info["password"] = self.password
        if self.passfile:
            info["passfile"] = str(self.passfile)
        return info


def _major_of_dir(path: Path) -> int:
    try:
        return int(path.parent.name) if path.name == "bin" else 0
    except ValueError:
        return 0


@lru_cache(maxsize=64)
def _binary_version(path: str) -> int:
    out = subprocess.run(
        [path, "--version"], env=child_env(), capture_output=True, text=True, check=False
    ).stdout
    # "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> 15
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out) or re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else 0


def find_binary(name: str, bin_dir: Path | None = None, min_major: int | None = None) -> Path:
    """Locate a PostgreSQL program, preferring one at least ``min_major``."""
    candidates: list[Path] = []
    if bin_dir is not None:
        candidates.append(Path(bin_dir) / name)
    if DEBIAN_ROOT.is_dir():
        dirs = sorted(
            (d / "bin" for d in DEBIAN_ROOT.iterdir() if d.name.isdigit()),
            key=_major_of_dir,
            reverse=True,
        )
        candidates.extend(d / name for d in dirs)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    existing = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
    if not existing:
        raise ConfigError(
            f"PostgreSQL program {name} not found; install the PostgreSQL client "
            "or set PG_BIN_DIR to the directory holding it"
        )
    if min_major is None:
        return existing[0]
    for cand in existing:
        if _binary_version(str(cand)) >= min_major:
            return cand
    best = existing[0]
    raise ConfigError(
        f"{name} at {best} is PostgreSQL {_binary_version(str(best))} but the server is "
        f"{min_major}; set PG_BIN_DIR to PostgreSQL {min_major} (or newer) binaries"
    )


@lru_cache(maxsize=64)
def binary_version(path: Path) -> str:
    """The version line of a program (``pg_dump (PostgreSQL) 15.8``).

    Cached: selecting a binary and recording its version in the manifest
    would otherwise run it twice, serially, before the dump starts.
    """
    res = subprocess.run(
        [str(path), "--version"], env=child_env(), capture_output=True, text=True, check=False
    )
    return res.stdout.strip()


def run_tool(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    input: bytes | None = None,
    timeout: float | None = None,
    check: bool = True,
    what: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a tool to completion, capturing output; a failure becomes a clear error."""
    args = [str(a) for a in argv]
    res = subprocess.run(
        args, env=dict(env), input=input, capture_output=True, timeout=timeout, check=False
    )
    if check and res.returncode != 0:
        raise tool_error(what or Path(args[0]).name, res.returncode, res.stderr)
    return res


def spawn_tool(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    stdin: int | None = None,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start a tool streaming through pipes; stderr is captured for error messages."""
    return subprocess.Popen(
        [str(a) for a in argv],
        env=dict(env),
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        bufsize=0,
    )


_CONN_PATTERNS = (
    "could not connect",
    "connection to server",
    "password authentication failed",
    "no password supplied",
    "Connection refused",
    "could not translate host name",
    "timeout expired",
    "no pg_hba.conf entry",
)


def _connection_failed(text: str) -> bool:
    """Did the tool fail to connect (as opposed to a statement failing)?

    "does not exist" alone is not enough: ``ERROR:  role "app" does not
    exist`` from a statement pg_restore replays means the target lacks a
    role, not that the server is down, and must not become exit 5 with a
    hint about DB_HOST. A missing database or login role is refused at
    connection time, as a FATAL.
    """
    if any(p in text for p in _CONN_PATTERNS):
        return True
    return any("FATAL" in ln and "does not exist" in ln for ln in text.splitlines())


def tool_error(name: str, code: int, stderr: bytes | str) -> Exception:
    """A one-line error from a tool's stderr, classified (connection vs other)."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    detail = lines[-1] if lines else f"exit status {code}"
    for ln in lines:
        if "error:" in ln or "FATAL" in ln:
            detail = ln
            break
    detail = re.sub(r"^\S*(pg_\w+|psql): (error: )?", "", detail)
    if _connection_failed(text):
        hint = (
            "check the password (DB_PASSWORD / PGPASSWORD / *_FILE)"
            if "password" in text
            else "check DB_HOST/DB_PORT/DB_NAME and that the server is up"
        )
        return SourceUnavailableError(f"{name}: {detail}; {hint}")
    from seawall.errors import SeawallError

    return SeawallError(f"{name} failed (exit {code}): {detail}")
