"""What wal-push refuses and wal-check reports, through the console script.

* A file that is not a WAL file exits 9 ("refused, nothing archived") on
  both paths, whether its name or its content gives it away
  (docs/wal-archiving.md, docs/exit-codes.md; issue 11 item 10).
* A WAL name stored with two contents (an archive written before pushes
  claimed names atomically, or two clusters that shared a name) is a
  problem ``wal-check`` reports, with exit 3 (issue 11 item 1).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.integration.wal.test_wal_lean_push import (
    archive_dir,
    env_for,
    make_segment,
    prepare_archive,
    stored,
)

#: the lean path's configuration, and one it hands to the general path (ADR 0002)
PATHS = {"lean": {}, "general": {"COMPRESSION": "none"}}


def _push(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEAWALL, "postgres", "wal-push", str(path)], env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("case", ["not-a-wal-name", "garbage", "empty", "no-long-header"])
def test_not_a_wal_file_exits_9(
    case: str, path: str, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    _, public = age_keys
    backup = tmp_path / "b"
    prepare_archive(backup)  # an archive exists: the lean path is in play
    env = env_for(backup, public, **PATHS[path])
    name = "000000010000000000000003"
    if case == "not-a-wal-name":
        bad = make_segment(tmp_path)  # even a real segment's bytes under another name
        bad = bad.rename(tmp_path / "pg_hba.conf")
    else:
        bad = tmp_path / name
        bad.write_bytes(
            {
                "garbage": bytes(range(256)) * 4096,
                "empty": b"",
                "no-long-header": b"\0" * (16 << 20),
            }[case]
        )
    before = stored(backup)
    res = _push(bad, env)
    assert res.returncode == 9, res.stderr
    assert res.stderr.count("\n") == 1 and "nothing archived" in res.stderr
    assert ("not a WAL file name" if case == "not-a-wal-name" else "not a WAL segment") in (
        res.stderr
    )
    assert stored(backup) == before


def test_wal_check_reports_a_name_stored_with_two_contents(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    backup = tmp_path / "b"
    env = env_for(backup, public)
    for n in (2, 3, 4):
        assert (
            _push(make_segment(tmp_path, f"00000001000000000000000{n}", seed=n), env).returncode
            == 0
        )
    check_env = env_for(backup, public, ENCRYPTION_IDENTITY_FILE=str(key))
    ok = subprocess.run(
        [SEAWALL, "postgres", "wal-check", "--json"], env=check_env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout).get("duplicates", []) == []

    # a second content of segment 3, stored as an unguarded push used to store it:
    # archived into another archive, then placed beside the first version
    other = tmp_path / "other"
    (tmp_path / "src2").mkdir()
    seg = make_segment(tmp_path / "src2", "000000010000000000000003", seed=99)
    assert _push(seg, env_for(other, public)).returncode == 0
    (second,) = (archive_dir(other) / "0000000100000000").glob("000000010000000000000003-*")
    directory = archive_dir(backup) / "0000000100000000"
    shutil.copy2(second, directory / second.name)
    versions = sorted(p.name for p in directory.glob("000000010000000000000003-*"))
    assert len(versions) == 2

    res = subprocess.run(
        [SEAWALL, "postgres", "wal-check", "--json"], env=check_env, capture_output=True, text=True
    )
    assert res.returncode == 3, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] is False and report["gaps"] == [] and report["segments"] == 3
    (dup,) = report["duplicates"]
    assert dup["name"] == "000000010000000000000003" and dup["different_content"] is True
    assert sorted(k.rsplit("/", 1)[-1] for k in dup["keys"]) == versions
    assert "stored more than once" in res.stderr

    text = subprocess.run(
        [SEAWALL, "postgres", "wal-check"], env=check_env, capture_output=True, text=True
    )
    assert text.returncode == 3
    assert "DUPLICATE 000000010000000000000003: stored 2 times with different contents" in (
        text.stdout
    )
    # and wal-fetch indeed refuses it, which is why it is a problem
    fetched = subprocess.run(
        [SEAWALL, "postgres", "wal-fetch", "000000010000000000000003", str(tmp_path / "out")],
        env=check_env,
        capture_output=True,
        text=True,
    )
    assert fetched.returncode == 3 and "more than once" in fetched.stderr
