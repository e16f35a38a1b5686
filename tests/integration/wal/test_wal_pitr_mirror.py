"""PITR when the primary's copy of a WAL segment is corrupt or gone and a mirror's is good.

``pitr-restore`` hands the repository to PostgreSQL's restore_command through a
wrapper script that runs wal-fetch with an explicit environment (``env -i``).
That environment carried BACKUP_DIR but not MIRRORS, so the wal-fetch of a
recovery never looked at a mirror: a segment damaged in the primary stopped
the recovery although the mirror held it intact. And the plan listed the
primary's archive alone: a segment the primary lost was a gap, ``--latest``
refused (exit 9), although the mirror held it.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from seawall.ports import free_loopback_port
from tests.integration.wal.helpers import Restored, make_archived
from tests.support.pgcluster import PgCluster


@pytest.mark.parametrize("damage", ["flipped", "lost"])
def test_pitr_replays_a_segment_from_the_mirror_when_the_primary_copy_is_bad(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    damage: str,
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    pg = arch.pg
    arch.basebackup()
    pg.psql("CREATE TABLE t (id int, note text)")
    segments = []
    for r in range(3):
        pg.psql(f"INSERT INTO t SELECT g, 'round {r} ' || g FROM generate_series(1, 5000) g")
        segments.append(arch.switch_and_wait())
    rows = pg.psql("SELECT count(*), sum(id), md5(string_agg(note, ',' ORDER BY id, note)) FROM t")

    # the mirror: a whole copy of the repository (ownership kept: postgres reads it)
    mirror = Path(tempfile.mkdtemp(prefix="seawall-mirror-", dir="/tmp"))
    mirror.chmod(0o755)
    subprocess.run(["cp", "-a", f"{backup_dir}/.", str(mirror)], check=True)
    # a segment recovery must replay: one byte flipped in the primary's copy, or gone
    (path,) = (backup_dir / "postgresql" / "wal").rglob(f"{segments[1]}-*")
    if damage == "lost":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20
        path.write_bytes(bytes(data))

    base = Path(tempfile.mkdtemp(prefix="seawall-pitr-", dir="/tmp"))
    base.chmod(0o755)
    port = free_loopback_port()
    restored = Restored(base, base / "data", port, pg.bin_dir)
    arch.restores.append(base)
    try:
        res = arch.seawall(
            "postgres", "pitr-restore", "--data-dir", str(base / "data"), "--latest",
            "--start", "--port", str(port), "--wait-timeout", "120",
            MIRRORS=str(mirror),
        )  # fmt: skip
        log = base / "server.log"
        server_log = log.read_text() if log.exists() else ""
        assert res.returncode == 0, f"{res.stderr[-2000:]}\n{server_log[-3000:]}"
        got = restored.psql(
            "SELECT count(*), sum(id), md5(string_agg(note, ',' ORDER BY id, note)) FROM t"
        )
        assert got == rows
        script = (base / ".data.seawall-recovery" / "restore_command.sh").read_text()
        assert f"MIRRORS={mirror}" in script
        if damage == "lost":
            assert f"{segments[1]}: missing in the primary, mirror {mirror} holds it" in res.stderr
    finally:
        restored.destroy()
        subprocess.run(["rm", "-rf", str(mirror)], check=False)
