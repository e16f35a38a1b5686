"""``seawall sync`` through the console script: its report and documented exit
codes (docs/exit-codes.md): 0 complete, 7 a mirror unreachable, 3 a primary copy
that fails its sha256 (not copied), 2 without MIRRORS."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from seawall.catalog.store import artifact_key, manifest_key
from tests.conftest import SEAWALL
from tests.unit.test_mirror import _backup, _repo


def _sync(primary: Path, mirror: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(primary, mirror, "sync", *args)


def _run(primary: Path, mirror: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "MIRROR"))}
    env.update(BACKUP_DIR=str(primary), LOG_FORMAT="text")
    if mirror is not None:
        env["MIRRORS"] = str(mirror)
    return subprocess.run([SEAWALL, *args], env=env, capture_output=True, text=True)


def test_sync_exit_codes_and_report(tmp_path: Path) -> None:
    p, m = tmp_path / "p", tmp_path / "m"
    m.write_text("down")  # the mirror is unreachable while the backup runs
    backup = _backup(_repo(p, m))

    res = _sync(p, None)
    assert res.returncode == 2 and "MIRRORS is not set" in res.stderr

    # `seawall status` says the mirror lags (a warning: the primary holds the backup)
    status = _run(p, m, "status")
    assert status.returncode == 0, status.stderr
    assert f"mirror {m}" in status.stdout and "2 object(s) not copied yet" in status.stdout

    res = _sync(p, m, "--json")  # still unreachable: exit 7, one JSON document
    assert res.returncode == 7, res.stderr
    [report] = json.loads(res.stdout)["mirrors"]
    assert report["complete"] is False and report["failed"]

    m.unlink()
    m.mkdir()
    res = _sync(p, m, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"would copy {artifact_key(backup, 'dump.bin.zst')}" in " ".join(res.stdout.split())
    assert not any(m.iterdir())

    # a flipped byte in the primary's artifact: not copied, manifest held back, exit 3
    art = p / artifact_key(backup, "dump.bin.zst")
    data = bytearray(art.read_bytes())
    data[5] ^= 0x20
    art.write_bytes(bytes(data))
    res = _sync(p, m)
    assert res.returncode == 3, res.stderr
    assert "FAILED" in res.stdout and "held back" in res.stdout and "INCOMPLETE" in res.stdout
    assert not (m / manifest_key(backup)).exists()

    data[5] ^= 0x20
    art.write_bytes(bytes(data))
    res = _sync(p, m)
    assert res.returncode == 0, res.stderr
    assert "copied 2 objects" in res.stdout and "mirror complete" in res.stdout
    assert (m / manifest_key(backup)).read_bytes() == (p / manifest_key(backup)).read_bytes()
    assert f"mirror {m}" not in _run(p, m, "status").stdout
