"""docs/manual-restore.md works: its script, run verbatim with only the
stock CLIs, finds the newest successful backup and restores it."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, run_seawall
from tests.integration.postgres_logical.helpers import SMALL_SQL, db_state, manifests, seawall_env
from tests.support.pgcluster import PgCluster


def _script() -> str:
    text = (ROOT / "docs" / "manual-restore.md").read_text()
    m = re.search(r"<!-- manual-restore-script -->\s*```sh\n(.*?)```", text, re.S)
    assert m, "script block missing from docs/manual-restore.md"
    return m.group(1)


def test_manual_restore_script_from_docs(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    source = pg_factory()
    source.psql("CREATE DATABASE app")
    source.psql(SMALL_SQL, "app")
    env = seawall_env(
        source, backup_dir, ENCRYPTION="true", ENCRYPTION_RECIPIENTS=public,
        ENCRYPTION_IDENTITY_FILE=str(key),
    )  # fmt: skip
    assert run_seawall(["postgres", "backup", "-d", "app"], env).returncode == 0
    source.psql("INSERT INTO items (name) VALUES ('only in the newest backup')", "app")
    time.sleep(1.1)  # ids have one-second resolution; the script orders by id
    assert run_seawall(["postgres", "backup", "-d", "app"], env).returncode == 0
    time.sleep(1.1)
    # a newer failed run must be skipped by the script
    assert (
        run_seawall(["postgres", "backup", "-d", "app"], {**env, "PGPASSWORD": "bad"}).returncode
        == 5
    )
    assert [m["status"] for m in manifests(backup_dir, "app")] == ["success", "success", "failed"]

    target = pg_factory()
    shell_env = {
        **target.env(),
        "PATH": f"{target.bin_dir}:{os.environ['PATH']}",
        "BACKUP_DIR": str(backup_dir),
        "DB": "app",
        "KEY": str(key),
        "TARGET": "app_restored",
    }
    res = subprocess.run(["bash", "-c", _script()], env=shell_env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "restored into app_restored" in res.stdout
    assert db_state(target, "app_restored")["contents"] == db_state(source, "app")["contents"]
