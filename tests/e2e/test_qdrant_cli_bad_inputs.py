"""`seawall qdrant ...` given an empty name, as a script with an unset
variable gives it (`--to "$NEW"`, `qdrant backup "$C"`): one line, exit 2,
and nothing touched: no live collection replaced, no junk series recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://127.0.0.1:99999",
        "notaurl",
        "ftp://qdrant:6333",
        "http://",
        "http://:6333",
    ],
)
def test_a_malformed_qdrant_url_is_a_configuration_error(url: str, qdir: Path) -> None:
    """Not "internal error" (exit 1), nor "cannot reach Qdrant" (exit 5: it was never asked)."""
    env = env_for(None, qdir, QDRANT_URL=url)
    for args in (["qdrant", "collections"], ["qdrant", "backup"]):
        res = sw(args, env)
        _one_line_exit_2(res, "QDRANT_URL")
    assert not any(qdir.iterdir()), "nothing may be recorded for a run that never started"


def test_a_malformed_peer_url_is_a_configuration_error(qdir: Path) -> None:
    env = env_for(None, qdir, QDRANT_URL="http://127.0.0.1:9", QDRANT_PEER_URLS="http://[::1,x")
    _one_line_exit_2(sw(["qdrant", "collections"], env), "QDRANT_PEER_URLS")


def test_a_malformed_qdrant_url_with_a_password_does_not_print_it(qdir: Path) -> None:
    env = env_for(None, qdir, QDRANT_URL="http://admin:pw-9f2c1e@127.0.0.1:70000")
    res = sw(["qdrant", "collections"], env)
    _one_line_exit_2(res, "QDRANT_URL")
    assert "pw-9f2c1e" not in res.stderr + res.stdout
