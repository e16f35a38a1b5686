"""``drill --report DIR``: DIR is created one level deep at most, and a bad DIR
is refused before the drill runs.

Before, ``drill --report /typo/reports`` ran the whole drill and then created
the whole path (``mkdir -p``): the report landed where nobody looks (or on
the root filesystem instead of an unmounted volume) and the exit code said
all was well. Now a DIR whose parent does not exist, or that is a file, is
one line and exit 2 before anything runs: no scratch database, no drill
record; a missing DIR whose parent exists is created and filled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, seawall_env
from tests.support.pgcluster import PgCluster


@pytest.fixture
def env(pg: PgCluster, backup_dir: Path) -> dict[str, str]:
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    env = seawall_env(pg, backup_dir, DB_NAME="items")
    res = run_seawall(["postgres", "backup", "-d", "items"], env)
    assert res.returncode == 0, res.stderr
    return env


def _drills(backup_dir: Path) -> list[Path]:
    return sorted((backup_dir / "drills").rglob("manifest.json"))


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_report_dir_with_a_missing_parent_is_refused_before_the_drill(
    env: dict[str, str], backup_dir: Path, tmp_path: Path
) -> None:
    typo = tmp_path / "typo" / "reports"
    res = run_seawall(["drill", "--report", str(typo)], env)
    assert res.returncode == 2, res.stdout + res.stderr
    line = _one_line(res.stderr)
    assert f"its parent {typo.parent} does not exist" in line, line
    assert not typo.parent.exists()
    assert _drills(backup_dir) == []  # the drill did not run


def test_report_dir_that_is_a_file_is_refused_before_the_drill(
    env: dict[str, str], backup_dir: Path, tmp_path: Path
) -> None:
    afile = tmp_path / "report.txt"
    afile.write_text("not a directory\n")
    res = run_seawall(["drill", "--report", str(afile)], env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "is not a directory" in _one_line(res.stderr)
    assert afile.read_text() == "not a directory\n"
    assert _drills(backup_dir) == []


def test_a_missing_report_dir_whose_parent_exists_is_created(
    env: dict[str, str], tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    res = run_seawall(["drill", "--json", "--report", str(reports)], env)
    assert res.returncode == 0, res.stdout + res.stderr
    drill_id = json.loads(res.stdout)["id"]
    assert sorted(p.name for p in reports.iterdir()) == [f"{drill_id}.json", f"{drill_id}.md"]
