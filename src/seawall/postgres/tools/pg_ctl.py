"""Typed wrapper of ``pg_ctl`` for servers seawall restores.

PostgreSQL refuses to run as root; when seawall runs as root (a restore Job,
the tests) the server is started as the data directory's owner.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from seawall.postgres.tools.base import child_env, tool_error


def _as_owner(data_dir: Path) -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    st = data_dir.stat()
    return {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}


def start(binary: Path, data_dir: Path, log_file: Path, *, wait: bool = False) -> None:
    """``pg_ctl start`` (without waiting by default: recovery may take long)."""
    argv = [str(binary), "-D", str(data_dir), "-l", str(log_file), "start"]
    argv.insert(1, "-w" if wait else "-W")
    env = child_env()  # the server inherits it: no secret of seawall's
    env["HOME"] = pwd.getpwuid(data_dir.stat().st_uid).pw_dir
    res = subprocess.run(  # type: ignore[call-overload]
        argv, env=env, capture_output=True, check=False, cwd="/", **_as_owner(data_dir)
    )
    if res.returncode != 0:
        raise tool_error("pg_ctl", res.returncode, res.stderr or res.stdout)


def stop(binary: Path, data_dir: Path, mode: str = "fast") -> None:
    subprocess.run(  # type: ignore[call-overload]
        [str(binary), "-D", str(data_dir), "-m", mode, "-w", "stop"],
        env=child_env(),
        capture_output=True,
        check=False,
        cwd="/",
        **_as_owner(data_dir),
    )


def status(binary: Path, data_dir: Path) -> bool:
    """True while a postmaster runs on ``data_dir``."""
    res = subprocess.run(  # type: ignore[call-overload]
        [str(binary), "-D", str(data_dir), "status"],
        env=child_env(),
        capture_output=True,
        check=False,
        cwd="/",
        **_as_owner(data_dir),
    )
    return bool(res.returncode == 0)


def find_pg_binary(name: str, bin_dir: Path | None, min_major: int | None = None) -> Path:
    """``find_binary`` that also understands Debian's version line.

    ``base._binary_version`` reads the text after the last ``)``, which is
    empty for ``pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)``; until
    that is fixed there, a binary of the right major is looked for here.
    """
    import re

    from seawall.errors import ConfigError
    from seawall.postgres.tools.base import DEBIAN_ROOT, binary_version, find_binary

    try:
        return find_binary(name, bin_dir, min_major=min_major)
    except ConfigError:
        if min_major is None:
            raise
    dirs = [bin_dir] if bin_dir is not None else []
    if DEBIAN_ROOT.is_dir():
        dirs += sorted((d / "bin" for d in DEBIAN_ROOT.iterdir() if d.name.isdigit()), reverse=True)
    for d in dirs:
        cand = Path(d) / name
        if cand.is_file():
            m = re.search(r"\(PostgreSQL\)\s+(\d+)", binary_version(cand))
            if m and int(m.group(1)) >= min_major:
                return cand
    return find_binary(name, bin_dir, min_major=min_major)
