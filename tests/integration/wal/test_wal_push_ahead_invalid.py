"""An invalid ``WAL_PUSH_AHEAD`` in ``wal-push``: one line naming it and exit 2 (ConfigError,
docs/exit-codes.md), as every other command says it; never "off" quietly, never a marker
believed, nothing archived and no pusher started."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.wal.asynchelpers import (
    env_without_seawall,
    markers,
    name_of,
    pusher_pids,
    ready,
    spool,
    wait_for,
    wal_push,
)  # fmt: skip

BAD = ("abc", "-1", "8x", "2.5")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    yield path
    for pid in pusher_pids(path):
        os.kill(pid, signal.SIGKILL)


def _assert_refused(res: subprocess.CompletedProcess[str], value: str) -> None:
    assert res.returncode == 2, res
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "WAL_PUSH_AHEAD" in lines[0] and value.strip() in lines[0], lines
    assert lines[0].startswith("seawall: error: invalid configuration: WAL_PUSH_AHEAD")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_invalid_wal_push_ahead_is_refused_in_one_line(
    tmp_path: Path, root: Path, where: str
) -> None:
    name = name_of(0x11)
    ready(root, [name])
    backup = str(tmp_path / "backups") if where == "local" else "s3://bucket/prefix"
    for value in BAD:
        env = env_without_seawall(
            BACKUP_DIR=backup, WAL_PUSH_AHEAD=value, AWS_ENDPOINT_URL="http://127.0.0.1:9",
            AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_REGION="us-east-1",
        )  # fmt: skip
        _assert_refused(wal_push(root, name, env), value)
    assert not (tmp_path / "backups").exists()  # nothing archived
    assert not spool(root).exists() and pusher_pids(root) == []


def test_a_marker_is_not_believed_under_an_invalid_value(tmp_path: Path, root: Path) -> None:
    """A pusher archived segment 2 ahead (a good marker); the operator then mistypes
    the value: wal-push of segment 2 is refused, the marker left for a valid wal-push."""
    names = [name_of(0x21 + i) for i in range(3)]
    ready(root, names)
    good = env_without_seawall(
        BACKUP_DIR=str(tmp_path / "backups"), WAL_PUSH_AHEAD="2", WAL_PUSH_AHEAD_IDLE="2"
    )
    first = wal_push(root, names[0], good)
    assert first.returncode == 0, first.stderr
    wait_for(lambda: names[1] in markers(root), 120, "the pusher's marker")
    _assert_refused(wal_push(root, names[1], {**good, "WAL_PUSH_AHEAD": "2x"}), "2x")
    assert names[1] in markers(root)
    res = wal_push(root, names[1], good)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert names[1] not in markers(root)  # taken: a hit
