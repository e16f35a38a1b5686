"""A BACKUP_DIR that cannot be written is one clear line and exit 7
(issue 11 item 9: it was "internal error", exit 1, from the lock file).

Real conditions only: a tmpfs mounted read-only, a tmpfs filled to the last
byte, a directory the (real, unprivileged) user may not write, a regular
file. Root ignores permission bits, so the unwritable case runs the CLI as
``nobody``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.integration.postgres_logical.helpers import seawall_env
from tests.support.pgcluster import PgCluster


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    """A 1 MiB tmpfs of our own, unmounted after the test."""
    point = Path(tempfile.mkdtemp(prefix="seawall-tmpfs-", dir="/tmp"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(point)], check=True
    )
    yield point
    subprocess.run(["umount", str(point)], check=True)
    point.rmdir()


def _backup(env: dict[str, str], user: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [SEAWALL, "postgres", "backup", "--database", "app"]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def _assert_one_clear_line(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 7, (res.returncode, res.stderr)
    plain = []
    for line in res.stderr.splitlines():
        try:
            json.loads(line)  # structured log lines (LOG_FORMAT=json)
        except ValueError:
            plain.append(line)
    assert len(plain) == 1, res.stderr
    [line] = plain
    assert line.startswith("seawall: error: ") and "internal error" not in line, line
    assert all(w in line for w in words), line
    assert "Traceback" not in res.stderr


def test_read_only_mount(cluster: PgCluster, tmpfs: Path) -> None:
    env = seawall_env(cluster, tmpfs, ENCRYPTION="false")
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    _assert_one_clear_line(_backup(env), "Read-only file system", "read-write")


def test_read_only_after_a_backup(cluster: PgCluster, tmpfs: Path) -> None:
    """The volume went read-only after earlier runs: the lock file exists."""
    env = seawall_env(cluster, tmpfs, ENCRYPTION="false", VERIFY_BACKUP="false")
    assert _backup(env).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    _assert_one_clear_line(_backup(env), "Read-only file system")
    # what is there still lists and verifies (no hold is needed on a read-only volume)
    res = subprocess.run(
        [SEAWALL, "postgres", "verify", "latest", "-d", "app", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "internal error" not in res.stderr, res.stderr


def test_full_volume(cluster: PgCluster, tmpfs: Path) -> None:
    env = seawall_env(cluster, tmpfs, ENCRYPTION="false")
    with open(tmpfs / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == 28  # ENOSPC: the volume is 100 % full
    _assert_one_clear_line(_backup(env), "full", "free space")


def test_unwritable_directory(cluster: PgCluster, backup_dir: Path) -> None:
    target = backup_dir / "root-owned"
    target.mkdir()
    os.chmod(target, 0o755)  # root's; nobody may not write it
    env = seawall_env(cluster, target, ENCRYPTION="false", HOME="/tmp")
    _assert_one_clear_line(_backup(env, user="nobody"), "Permission denied", "owned by the user")


def test_regular_file(cluster: PgCluster, backup_dir: Path) -> None:
    target = backup_dir / "a-file"
    target.write_text("not a directory\n")
    env = seawall_env(cluster, target, ENCRYPTION="false")
    _assert_one_clear_line(_backup(env), "not a directory", "BACKUP_DIR")
    assert target.read_text() == "not a directory\n"


def test_wal_commands_on_unusable_archives(tmpfs: Path, tmp_path: Path) -> None:
    """wal-push on a read-only volume, wal-fetch from an archive another uid owns."""
    from tests.integration.wal.test_wal_lean_push import make_segment

    seg = make_segment(tmp_path, "000000010000000000000003")
    env = {"PATH": os.environ["PATH"], "BACKUP_DIR": str(tmpfs), "LOG_FORMAT": "json"}
    wal = ["postgres", "wal-push", str(seg)]
    res = subprocess.run([SEAWALL, *wal], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr  # root's archive: 0700 directories
    dest = Path(tempfile.mkdtemp(prefix="seawall-fetch-", dir="/tmp"))
    os.chmod(dest, 0o777)
    try:
        fetch = ["postgres", "wal-fetch", seg.name, str(dest / seg.name)]
        res = subprocess.run(
            ["runuser", "-u", "nobody", "--", SEAWALL, *fetch],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        _assert_one_clear_line(res, "Permission denied", "the user owning the archive")
        assert not (dest / seg.name).exists()
    finally:
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    nxt = make_segment(tmp_path, "000000010000000000000004")
    res = subprocess.run(
        [SEAWALL, "postgres", "wal-push", str(nxt)], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    _assert_one_clear_line(res, "Read-only file system")
