"""The repository is private whatever the caller's umask (issue 11 item 6).

An unencrypted dump is the whole database and ``globals.sql`` holds the
roles' password hashes: a real unprivileged user (``nobody``) must not be
able to read any file or list any directory seawall made, under the usual
umask 022 and under umask 000. BACKUP_DIR itself is a volume mount made by
the administrator (0755 here, as a PersistentVolume's root usually is), so
every directory and file below it has to protect itself.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from seawall.postgres.wal import fastpush
from tests.conftest import SEAWALL
from tests.integration.postgres_logical.helpers import SMALL_SQL, seawall_env
from tests.integration.wal.test_wal_lean_push import make_segment
from tests.support.pgcluster import PgCluster

#: Run as ``nobody``: try to read every file and list every directory given on stdin.
PROBE = """
import json, os, sys
got = []
for p in json.load(sys.stdin):
    try:
        if os.path.isdir(p):
            os.listdir(p)
        else:
            with open(p, "rb") as fh:
                fh.read(1)
        got.append(p)
    except OSError:
        pass
print(json.dumps(got))
"""


def _run(args: list[str], env: dict[str, str], umask: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEAWALL, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(umask),
    )


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_nobody_reads_nothing_of_a_repository(
    pg: PgCluster, backup_dir: Path, tmp_path: Path, umask: int
) -> None:
    repo = backup_dir / "volume"
    repo.mkdir()
    os.chmod(repo, 0o755)  # the mount point: traversable by anyone
    pg.psql("CREATE DATABASE app")
    pg.psql(SMALL_SQL, "app")
    env = seawall_env(pg, repo, DATABASES="app", ENCRYPTION="false", PG_CLUSTER_NAME="main")
    env.pop("ENCRYPTION_KEY", None)

    res = _run(["postgres", "backup"], env, umask)  # dump, globals, manifest, series lock
    assert res.returncode == 0, res.stderr
    res = _run(["postgres", "verify", "latest", "-d", "app"], env, umask)  # a hold, a manifest
    assert res.returncode == 0, res.stderr

    # WAL: the first push takes the general path (it creates the directories
    # and archive.json), the next ones the lean path, through the CLI and in-process
    segs = tmp_path / "segs"
    segs.mkdir()
    for name in ("000000010000000000000003", "000000010000000000000004"):
        res = _run(["postgres", "wal-push", str(make_segment(segs, name))], env, umask)
        assert res.returncode == 0, res.stderr
    old = os.umask(umask)
    try:
        lean = fastpush.push(str(make_segment(segs, "000000010000000000000005")), env).name
    finally:
        os.umask(old)
    assert lean.startswith("000000010000000000000005-")

    made = sorted(p for p in repo.rglob("*"))
    kinds = {p.relative_to(repo).parts[0] for p in made}
    assert {".locks", "postgresql"} <= kinds
    names = {p.name for p in made}
    assert "manifest.json" in names and "archive.json" in names and lean in names
    assert any(n.startswith("globals.sql") for n in names)
    assert any(n.endswith(".lock") for n in names)

    modes = {str(p.relative_to(repo)): stat.S_IMODE(p.stat().st_mode) for p in made}
    wrong = {p: oct(m) for p, m in modes.items() if m != (0o700 if (repo / p).is_dir() else 0o600)}
    assert wrong == {}, f"not private under umask {umask:03o}: {wrong}"

    probe = subprocess.run(
        ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", PROBE],
        input=json.dumps([str(p) for p in made]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    readable = json.loads(probe.stdout)
    assert readable == [], f"nobody can read {readable}"
    # the probe really is able to read what is readable (it is not failing for another reason)
    canary = repo / "canary"
    canary.write_text("x")
    os.chmod(canary, 0o644)
    probe = subprocess.run(
        ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", PROBE],
        input=json.dumps([str(canary)]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(probe.stdout) == [str(canary)]
