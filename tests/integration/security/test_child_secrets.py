"""No secret reaches a child process that does not need it, in its
environment or on its command line (issue 11 item 7, issue 18 item 4).

Every PostgreSQL program seawall runs (and ``tar``) is replaced by a wrapper,
first in ``PG_BIN_DIR`` and ``PATH``, that copies its own
``/proc/<pid>/environ`` and ``/proc/<pid>/cmdline`` aside and then ``exec``s
the real program (same process, same environment, same arguments). A real
backup, verify --deep, restore, base backup and deep base-backup
verification run through them; then every recorded child is checked:

* no argv contains a secret;
* no environment variable carries a secret, except ``PGPASSWORD`` in the
  libpq clients that connect (pg_dump, pg_dumpall, pg_restore, psql,
  pg_basebackup) — what libpq needs;
* none of seawall's own secret variables (``DB_PASSWORD``, ``ENCRYPTION_KEY``,
  ``QDRANT_API_KEY``, ``AWS_*``, ``SEAWALL_*``) is passed on at all.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL
from tests.integration.wal.helpers import make_archived
from tests.support.pgcluster import PASSWORD, PG15_BIN, PgCluster

LIBPQ_CLIENTS = {"pg_dump", "pg_dumpall", "pg_restore", "psql", "pg_basebackup"}
OTHER_SECRETS = {
    "QDRANT_API_KEY": "qdrant-api-key-7c1f",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-9e2d",
    "SEAWALL_QDRANT_API_KEY": "seawall-qdrant-key-44aa",
}
FORBIDDEN_NAMES = ("DB_PASSWORD", "ENCRYPTION_KEY", "ENCRYPTION_IDENTITY", "QDRANT_API_KEY")

WRAPPER = """#!/bin/sh
# record this process's environment and argv, then become the real program
out="{records}/$(basename "$0").$$"
cat /proc/$$/environ > "$out.environ"
cat /proc/$$/cmdline > "$out.cmdline"
exec {real} "$@"
"""


@pytest.fixture
def spy() -> Iterator[tuple[Path, Path]]:
    """(bin dir of wrappers, dir of records); postgres-owned programs (pg_ctl) record too."""
    root = Path(tempfile.mkdtemp(prefix="seawall-spy-", dir="/tmp"))
    os.chmod(root, 0o755)
    bin_dir, records = root / "bin", root / "records"
    bin_dir.mkdir(mode=0o755)
    records.mkdir()
    os.chmod(records, 0o777)
    real_tar = shutil.which("tar")
    assert real_tar is not None
    programs = {p.name: str(p) for p in PG15_BIN.iterdir()} | {"tar": real_tar}
    for name, real in programs.items():
        wrapper = bin_dir / name
        wrapper.write_text(WRAPPER.format(records=records, real=real))
        wrapper.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    yield bin_dir, records
    shutil.rmtree(root, ignore_errors=True)


def _children(records: Path) -> list[tuple[str, dict[str, str], list[str]]]:
    found = []
    for env_file in sorted(records.glob("*.environ")):
        name = env_file.name.rsplit(".", 2)[0]
        env = dict(
            item.split("=", 1) for item in env_file.read_bytes().decode().split("\0") if "=" in item
        )
        argv = env_file.with_suffix(".cmdline").read_bytes().decode().split("\0")
        found.append((name, env, argv))
    return found


def test_children_get_no_secret(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    spy: tuple[Path, Path],
) -> None:
    spy_bin, records = spy
    key_file, _public = age_keys
    identity = next(
        ln for ln in key_file.read_text().splitlines() if ln.startswith("AGE-SECRET-KEY-")
    )
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    pg.psql("CREATE DATABASE app")
    pg.psql(SMALL_SQL, "app")

    env = {k: v for k, v in arch.env().items() if not k.startswith("ENCRYPTION")}
    env.pop("PGPASSWORD")
    env.update(
        DB_PASSWORD=PASSWORD,
        ENCRYPTION="true",
        ENCRYPTION_KEY=identity,
        PG_BIN_DIR=str(spy_bin),
        PATH=f"{spy_bin}:{os.environ['PATH']}",
        DATABASES="app",
        PRUNE_AFTER_BACKUP="false",
        **OTHER_SECRETS,
    )
    steps = [
        ["postgres", "backup"],
        ["postgres", "verify", "latest", "-d", "app", "--deep"],
        ["postgres", "restore", "latest", "-d", "app", "--target-db", "app_copy"],
        ["postgres", "basebackup", "--wal-wait", "30"],
        ["postgres", "verify", "latest", "--base", "--deep"],
    ]
    for args in steps:
        res = run_seawall(args, env)
        assert res.returncode == 0, (args, res.stderr)
    assert pg.psql("SELECT count(*) FROM items", "app_copy") == "3000"

    children = _children(records)
    seen = {name for name, _, _ in children}
    # the wrappers really were run (the test cannot pass by watching nothing)
    assert {"pg_dump", "pg_dumpall", "pg_restore", "psql", "pg_basebackup"} <= seen, seen
    assert {"tar", "pg_verifybackup"} & seen, seen

    secrets = {"DB_PASSWORD": PASSWORD, "ENCRYPTION_KEY": identity, **OTHER_SECRETS}
    problems = []
    for name, child_env, argv in children:
        for what, value in secrets.items():
            if any(value in arg for arg in argv):
                problems.append(f"{name}: {what} in argv")
            for var, val in child_env.items():
                if value in val and not (var == "PGPASSWORD" and name in LIBPQ_CLIENTS):
                    problems.append(f"{name}: {what} in environment variable {var}")
        passed = [
            v for v in child_env if v.startswith(("SEAWALL_", "AWS_")) or v in FORBIDDEN_NAMES
        ]
        if passed:
            problems.append(f"{name}: gets {sorted(passed)}")
    assert problems == [], json.dumps(sorted(set(problems)), indent=1)
    # and the libpq clients did get what they need to connect
    dumps = [e for n, e, argv in children if n == "pg_dump" and "--version" not in argv]
    assert dumps and all(e.get("PGPASSWORD") == PASSWORD for e in dumps)
