"""`seawall qdrant ...` given an empty name, as a script with an unset
variable gives it (`--to "$NEW"`, `qdrant backup "$C"`): one line, exit 2,
and nothing touched: no live collection replaced, no junk series recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e import test_qdrant_cli as cli
from tests.e2e.test_qdrant_cli import env_for, sw

qdir = cli.qdir
qdrant_server = cli.qdrant_server


def _one_line_exit_2(res: Any, needle: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("seawall: error:")]
    assert len(lines) == 1 and needle in lines[0], res.stderr


def test_restore_to_an_empty_name_is_refused_and_the_live_collection_untouched(
    qdrant_server: Any, qdir: Path
) -> None:
    qdrant_server.create_collection("live", 4, points=20, seed=1)
    env = env_for(qdrant_server, qdir)
    assert sw(["init"], env).returncode == 0
    res = sw(["qdrant", "backup", "live", "--no-verify"], env)
    assert res.returncode == 0, res.stderr
    # the live collection changes after the backup: a restore over it would lose this
    qdrant_server.create_collection("other", 4)
    qdrant_server.delete_collection("live")
    qdrant_server.create_collection("live", 4, points=25, seed=2)
    uploads = len(qdrant_server.uploads)

    res = sw(["qdrant", "restore", "latest", "--collection", "live", "--to", "", "--clean"], env)
    _one_line_exit_2(res, "--to")
    assert len(qdrant_server.uploads) == uploads, "nothing may be uploaded"
    assert qdrant_server.points_count("live") == 25


def test_backup_of_an_empty_collection_name_records_nothing(qdrant_server: Any, qdir: Path) -> None:
    qdrant_server.create_collection("c", 4, points=5, seed=1)
    env = env_for(qdrant_server, qdir)
    assert sw(["init"], env).returncode == 0
    res = sw(["qdrant", "backup", "c", ""], env)
    _one_line_exit_2(res, "empty")
    assert not (qdir / "qdrant").exists(), sorted(str(p) for p in qdir.rglob("*"))
    assert not (qdir / "rejected").exists()
