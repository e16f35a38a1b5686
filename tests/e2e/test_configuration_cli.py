"""Configuration as an operator meets it through the CLI (issue 12).

Every bad field reported at once, enumerated values case-insensitive, a
misspelt ``SEAWALL_`` variable warned about with the closest valid name, and
``seawall backup`` backing up every configured engine when ``ENGINES`` is unset.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import SEAWALL
from tests.e2e.test_qdrant_cli import DIM, env_for, qdir, qdrant_server, sw
from tests.support.pgcluster import PgCluster

__all__ = ["qdir", "qdrant_server"]  # pytest fixtures used below


def _env(backup_dir: Path, **extra: str) -> dict[str, str]:
    drop = ("SEAWALL_", "DB_", "PG", "QDRANT", "RETENTION", "COMPRESSION", "ENGINES", "LOG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"BACKUP_DIR": str(backup_dir), "LOG_FORMAT": "json", **extra})
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEAWALL, *args], env=env, capture_output=True, text=True, timeout=120)


def test_every_bad_field_is_reported_at_once(tmp_path: Path) -> None:
    res = _run(["prune", "--dry-run"], _env(tmp_path, COMPRESSION_LEVEL="99", RETENTION_DAYS="-3"))
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert "COMPRESSION_LEVEL" in line and "RETENTION_DAYS" in line
    assert "1..22" in line


def test_enum_values_are_case_insensitive(tmp_path: Path) -> None:
    env = _env(
        tmp_path, COMPRESSION="ZSTD", LOG_LEVEL="Warning", LOG_FORMAT="JSON", ENGINES="Postgres"
    )
    res = _run(["prune", "--dry-run"], env)
    assert res.returncode == 0, res.stderr
    res = _run(["prune", "--dry-run"], _env(tmp_path, COMPRESSION="LZ4"))
    assert res.returncode == 2  # refused for what it is, not for its case
    assert "'zstd', 'gzip' or 'none'" in res.stderr


def test_misspelt_seawall_variable_is_warned_about(tmp_path: Path) -> None:
    env = _env(tmp_path, SEAWALL_RETENTON_DAYS="3", SEAWALL_XYZZY="1")
    res = _run(["--quiet", "prune", "--dry-run"], env)
    assert res.returncode == 0, res.stderr
    warnings = [json.loads(line)["msg"] for line in res.stderr.splitlines()]
    assert any(
        "SEAWALL_RETENTON_DAYS" in w and "did you mean SEAWALL_RETENTION_DAYS" in w
        for w in warnings
    ), warnings
    assert any("SEAWALL_XYZZY" in w and "did you mean" not in w for w in warnings)
    # real names (and the ones read outside the settings) are not warned about
    env = _env(tmp_path, SEAWALL_RETENTION_DAYS="3", SEAWALL_CONFIG="")
    assert "not a seawall setting" not in _run(["prune", "--dry-run"], env).stderr


def test_backup_covers_every_configured_engine_without_engines(
    qdrant_server: Any, pg: PgCluster, qdir: Path
) -> None:
    """README configures both and sets no ENGINES: both are backed up, the summary says so."""
    qdrant_server.create_collection("both", DIM, points=20, seed=7)
    env = {**pg.env(), **env_for(qdrant_server, qdir)}
    assert "ENGINES" not in env
    res = sw(["backup"], env)
    assert res.returncode == 0, res.stderr
    assert "2 of 2 backups succeeded (engines: postgres, qdrant)" in res.stdout
    res = sw(["backup", "--json"], env)
    engines = {r["engine"] for r in json.loads(res.stdout)}
    assert engines == {"postgresql", "qdrant"}


def test_qdrant_only_configuration_does_not_back_up_postgres(
    qdrant_server: Any, qdir: Path
) -> None:
    qdrant_server.create_collection("solo", DIM, points=10, seed=8)
    env = env_for(qdrant_server, qdir)  # no DB_*/PG* at all
    res = sw(["backup"], env)
    assert res.returncode == 0, res.stderr
    assert "1 of 1 backups succeeded (engines: qdrant; not configured: postgres)" in res.stdout


def test_both_spellings_choose_the_postgresql_engine(tmp_path: Path) -> None:
    """docs/design.md: typed `postgres`, written `postgresql`; inputs accept both."""
    outputs = []
    for word in ("postgres", "postgresql", "PostgreSQL"):
        res = _run(["prune", "--dry-run", "--json", "--engine", word.lower()], _env(tmp_path))
        assert res.returncode == 0, res.stderr
        outputs.append({k: v for k, v in json.loads(res.stdout).items() if k != "now"})
        res = _run(["prune", "--dry-run"], _env(tmp_path, ENGINES=word))
        assert res.returncode == 0, res.stderr
    assert outputs[0] == outputs[1] == outputs[2]
    design = (Path(__file__).parents[2] / "docs" / "design.md").read_text()
    assert "**`postgresql` is the word seawall writes**" in design
