"""wal-push / wal-fetch against real WAL segments of real clusters.

The segments come from a cluster whose archive_command is seawall itself;
the tests then push and fetch copies of them by hand to check the safety
rules: duplicates, conflicting content, foreign clusters, missing and
corrupt files, and a kill -9 in the middle of a push.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import SEAWALL, run_seawall
from tests.integration.wal.helpers import Archived, archive_files, make_archived
from tests.support.pgcluster import PgCluster


def _segment_copy(arch: Archived, dest_dir: Path) -> Path:
    """A real, complete segment of the cluster (the current one, copied)."""
    arch.pg.psql("CREATE TABLE IF NOT EXISTS filler (x text); INSERT INTO filler VALUES ('x')")
    name = arch.pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    src = arch.pg.datadir / "pg_wal" / name
    dest = dest_dir / name
    shutil.copyfile(src, dest)
    return dest


def _wal_files(backup_dir: Path, name: str) -> list[Path]:
    """Archived copies of ``name`` (temporaries of killed writers excluded)."""
    found = (backup_dir / "postgresql" / "wal").rglob(f"{name}-*")
    return sorted(p for p in found if ".age.partial-" not in p.name)


def test_push_fetch_roundtrip_duplicates_and_conflicts(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    seg = _segment_copy(arch, tmp_path)  # not archived yet: it is still being written

    first = arch.seawall("postgres", "wal-push", str(seg))
    assert first.returncode == 0, first.stderr
    stored = _wal_files(backup_dir, seg.name)
    assert len(stored) == 1 and stored[0].name.endswith(".zst.age")
    original = stored[0].read_bytes()

    # the stock age CLI decrypts it (no seawall needed to read the archive)
    plain = subprocess.run(
        ["age", "-d", "-i", str(arch.key_file), str(stored[0])], capture_output=True, check=True
    ).stdout
    assert (
        subprocess.run(["zstd", "-dc"], input=plain, capture_output=True, check=True).stdout
        == seg.read_bytes()
    )

    # same content again: success, nothing rewritten
    again = arch.seawall("postgres", "wal-push", str(seg))
    assert again.returncode == 0, again.stderr
    assert _wal_files(backup_dir, seg.name) == stored

    # same name, different content: refused, original untouched
    changed = tmp_path / "changed" / seg.name
    changed.parent.mkdir()
    data = bytearray(seg.read_bytes())
    data[-100] ^= 0xFF
    changed.write_bytes(bytes(data))
    conflict = arch.seawall("postgres", "wal-push", str(changed))
    assert conflict.returncode == 9
    assert "already archived with different content" in conflict.stderr
    assert _wal_files(backup_dir, seg.name) == stored
    assert stored[0].read_bytes() == original

    # fetch: byte-identical, written atomically to DEST
    dest = tmp_path / "RECOVERYXLOG"
    fetched = arch.seawall("postgres", "wal-fetch", seg.name, str(dest))
    assert fetched.returncode == 0, fetched.stderr
    assert dest.read_bytes() == seg.read_bytes()

    # missing: exit 1 and quiet (PostgreSQL probes for files that do not exist)
    missing = arch.seawall("postgres", "wal-fetch", "00000009.history", str(tmp_path / "h"))
    assert missing.returncode == 1 and missing.stderr == ""
    assert not (tmp_path / "h").exists()

    # corrupt: non-zero and loud, DEST not created
    blob = bytearray(original)
    blob[len(blob) // 2] ^= 0x01
    stored[0].write_bytes(bytes(blob))
    bad_dest = tmp_path / "bad"
    corrupt = arch.seawall("postgres", "wal-fetch", seg.name, str(bad_dest))
    assert corrupt.returncode == 3, corrupt.stderr  # docs/exit-codes.md: wal-fetch, corrupt
    assert "corrupt" in corrupt.stderr or "authentication" in corrupt.stderr
    assert not bad_dest.exists()
    assert not list(tmp_path.glob(".bad.seawall-*"))


def test_foreign_cluster_refused(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    arch = make_archived(pg_factory, backup_dir, age_keys)
    other = pg_factory()
    other.psql("SELECT pg_switch_wal()")
    name = other.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    foreign = tmp_path / name
    shutil.copyfile(other.datadir / "pg_wal" / name, foreign)
    before = archive_files(backup_dir)
    res = arch.seawall("postgres", "wal-push", str(foreign))
    assert res.returncode == 9
    assert "system identifier" in res.stderr
    assert archive_files(backup_dir) == before
    # a base backup of the other cluster into this cluster's series: refused too
    env = other.env(BACKUP_DIR=str(backup_dir), PG_CLUSTER_NAME="main")
    bb = run_seawall(["postgres", "basebackup", "--wal-wait", "0"], env)
    assert bb.returncode == 9 and "PG_CLUSTER_NAME" in bb.stderr, bb.stderr
    assert not (backup_dir / "postgresql" / "base").exists() or not any(
        (backup_dir / "postgresql" / "base").rglob("base.tar*")
    )
    # not a WAL file at all
    junk = tmp_path / "000000010000000000000042"
    junk.write_bytes(os.urandom(1 << 16))
    res = arch.seawall("postgres", "wal-push", str(junk))
    assert res.returncode == 9 and "not a WAL segment" in res.stderr
    assert archive_files(backup_dir) == before


def test_kill_9_mid_push_then_postgres_retries(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    """archive_command's first try of each segment is killed with SIGKILL while
    writing (age scrypt mode keeps it inside the write for ~1 s); PostgreSQL
    retries, the retry stores the segment, and the archive is complete."""
    arch = make_archived(pg_factory, backup_dir, age_keys)
    marks = backup_dir / "marks"
    marks.mkdir()
    os.chmod(marks, 0o777)
    script = backup_dir / "killing_archive_command.sh"
    env = (
        f"BACKUP_DIR={backup_dir} PG_CLUSTER_NAME=main ENCRYPTION=true "
        f"ENCRYPTION_RECIPIENTS={arch.public_key}"
    )
    script.write_text(
        "#!/bin/sh\n"
        f'mark="{marks}/$(basename "$1")"\n'
        'if [ ! -e "$mark" ]; then\n'
        '  touch "$mark"\n'
        f"  env BACKUP_DIR={backup_dir} PG_CLUSTER_NAME=main ENCRYPTION=true "
        f'ENCRYPTION_KEY=slow-passphrase {SEAWALL} postgres wal-push "$1" &\n'
        "  pid=$!\n"
        "  i=0\n"
        "  while [ $i -lt 400 ]; do\n"
        f'    if ls {backup_dir}/postgresql/wal/main/*/ 2>/dev/null | grep -q "age.partial-"; '
        "then break; fi\n"
        "    sleep 0.05; i=$((i+1))\n"
        "  done\n"
        f'  ls {backup_dir}/postgresql/wal/main/*/ | grep -c "age.partial-" > "$mark"\n'
        "  kill -9 $pid\n"
        "  exit 1\n"
        "fi\n"
        f'exec env {env} {SEAWALL} postgres wal-push "$1"\n'
    )
    os.chmod(script, 0o755)
    arch.pg.psql(f"ALTER SYSTEM SET archive_command = '{script} %p'")
    arch.pg.psql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    arch.pg.psql("CREATE TABLE k (i int); INSERT INTO k SELECT generate_series(1, 1000)")
    seg = arch.switch_and_wait(timeout=60)

    # the first attempt really was killed mid-write: a temporary file existed
    assert (marks / seg).read_text().strip() not in ("", "0")
    stored = _wal_files(backup_dir, seg)
    assert len(stored) == 1
    dest = tmp_path / "seg"
    res = arch.seawall("postgres", "wal-fetch", seg, str(dest))
    assert res.returncode == 0, res.stderr
    check = run_seawall(["postgres", "wal-check", "--json"], arch.env())
    assert '"gaps": []' in check.stdout
    # the killed writer left only a temporary that listing ignores and prune removes
    temporaries = list((backup_dir / "postgresql" / "wal").rglob("*.age.partial-*"))
    assert temporaries and all(p.name.startswith(seg) for p in temporaries)
