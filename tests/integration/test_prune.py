"""``seawall prune`` on real files: exactly the kept artifacts remain, and a
kill -9 in the middle of a prune leaves a catalog the next prune repairs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from seawall.catalog import Catalog
from seawall.catalog.locks import backup_hold
from seawall.storage.local import LocalStorage
from tests.conftest import SEAWALL
from tests.support.catalogs import add_backup

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def env_for(backup_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "RETENTION_"))}
    env.update(BACKUP_DIR=str(backup_dir), LOG_FORMAT="text", **extra)
    return env


def count_manifests(root: Path) -> int:
    """Count manifests while another process deletes directories under us."""
    total = 0
    for _dirpath, _dirs, files in os.walk(root):
        total += files.count("manifest.json")
    return total


def files_on_disk(root: Path) -> set[str]:
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts
    }


def test_prune_leaves_exactly_the_kept_artifacts(backup_dir: Path) -> None:
    catalog = Catalog(LocalStorage(backup_dir))
    made = [
        add_backup(catalog, series="app", end=NOW - timedelta(days=d, hours=10)) for d in range(60)
    ]
    failed = add_backup(catalog, series="app", end=NOW - timedelta(days=30), ok=False)
    other = add_backup(catalog, series="billing", end=NOW - timedelta(days=100))

    env = env_for(backup_dir, RETENTION_DAYS="7", RETENTION_WEEKS="4", RETENTION_MONTHS="0")
    dry = subprocess.run(
        [SEAWALL, "prune", "--dry-run", "--json"], env=env, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    decision = json.loads(dry.stdout)
    kept = {a["name"] for a in decision["actions"] if a["action"] == "keep"}
    dropped = {a["name"] for a in decision["actions"] if a["action"] == "drop"}
    before = files_on_disk(backup_dir)
    assert failed.id in dropped  # failed and past its 7-day grace
    assert other.id in kept  # newest successful of its series, however old
    assert made[0].id in kept
    # 7 daily + 4 weekly buckets: the 7 newest days, then one per older ISO week.
    assert len([m for m in made if m.id in kept]) <= 11
    assert files_on_disk(backup_dir) == before, "--dry-run changed the volume"

    real = subprocess.run([SEAWALL, "prune"], env=env, capture_output=True, text=True)
    assert real.returncode == 0, real.stderr
    after = files_on_disk(backup_dir)
    expected = {f for f in before if any(f"/{bid}/" in f for bid in kept)}
    assert after == expected
    # Every remaining manifest points at artifacts that exist.
    for m in Catalog(LocalStorage(backup_dir)).scan().manifests:
        for art in m.artifacts:
            assert any(f.endswith(f"{m.id}/{art.name}") for f in after)


def test_prune_refuses_an_empty_policy(backup_dir: Path) -> None:
    env = env_for(backup_dir, RETENTION_DAYS="0", RETENTION_WEEKS="0", RETENTION_MONTHS="0")
    res = subprocess.run([SEAWALL, "prune"], env=env, capture_output=True, text=True)
    assert res.returncode == 2
    assert "empty retention policy" in res.stderr


def test_prune_keeps_a_backup_held_by_a_restore(backup_dir: Path) -> None:
    catalog = Catalog(LocalStorage(backup_dir))
    old = add_backup(catalog, end=NOW - timedelta(days=400))
    add_backup(catalog, end=NOW - timedelta(hours=1))
    env = env_for(backup_dir, RETENTION_DAYS="1", RETENTION_WEEKS="0", RETENTION_MONTHS="0")
    with backup_hold(backup_dir, "postgresql", "logical", "app", old.id):
        res = subprocess.run([SEAWALL, "prune", "--json"], env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        verdict = next(a for a in out["actions"] if a["name"] == old.id)
        assert verdict["action"] == "keep"
        assert "locked by a running job" in " ".join(verdict["reasons"])
    res = subprocess.run([SEAWALL, "prune"], env=env, capture_output=True, text=True)
    assert res.returncode == 0
    assert old.id not in {m.id for m in catalog.scan().manifests}


def test_kill_9_during_prune_then_prune_again(backup_dir: Path) -> None:
    """A kill at a random moment of a big prune, then the repair. Where the kill
    lands varies; the deletion order itself is checked deterministically by
    test_prune_deletes_the_manifest_first_kill_9_after_every_unlink."""
    catalog = Catalog(LocalStorage(backup_dir))
    for i in range(1500):
        add_backup(catalog, end=NOW - timedelta(hours=6 * i), payload=b"y" * 200)
    env = env_for(backup_dir, RETENTION_DAYS="3", RETENTION_WEEKS="0", RETENTION_MONTHS="0")
    proc = subprocess.Popen(
        [SEAWALL, "prune"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    # Wait until deletion has visibly started, then kill it hard.
    start_count = count_manifests(backup_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if count_manifests(backup_dir) < start_count - 20:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mid = Catalog(LocalStorage(backup_dir)).scan()
    assert mid.errors == []
    assert 3 <= len(mid.manifests) < start_count, "kill landed before or after the prune"
    # Invariant even mid-crash: no manifest points at a missing artifact.
    for m in mid.manifests:
        for art in m.artifacts:
            assert (backup_dir / "postgresql/logical/app" / m.id / art.name).is_file()

    again = subprocess.run([SEAWALL, "prune"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    final = Catalog(LocalStorage(backup_dir)).scan().manifests
    assert len(final) == 3  # 3 daily buckets
    # Orphans (directories whose manifest went first) are younger than the
    # staleness window, so they are reported but left; age them and prune again.
    old = time.time() - 7200
    for p in (backup_dir / "postgresql").rglob("*"):
        os.utime(p, (old, old))
    subprocess.run([SEAWALL, "prune"], env=env, capture_output=True, text=True, check=True)
    dirs = {p.name for p in (backup_dir / "postgresql/logical/app").iterdir()}
    assert dirs == {m.id for m in final}


#: Loaded by the child through PYTHONPATH: logs every unlink and, after the
#: N-th, kills the process with SIGKILL (a real kill -9 at a chosen point).
KILLER = """
import os, signal
_log = os.environ["SEAWALL_TEST_UNLINK_LOG"]
_after = int(os.environ.get("SEAWALL_TEST_KILL_AFTER", "0"))
_count = [0]
_real = os.unlink
def _unlink(path, *args, **kwargs):
    _real(path, *args, **kwargs)
    with open(_log, "a") as fh:
        fh.write(os.fsdecode(path) + "\\n")
    _count[0] += 1
    if _count[0] == _after:
        os.kill(os.getpid(), signal.SIGKILL)
os.unlink = _unlink
os.remove = _unlink
"""


def _prune_recording(
    backup_dir: Path, hook: Path, log: Path, kill_after: int = 0
) -> subprocess.CompletedProcess[str]:
    log.unlink(missing_ok=True)
    env = env_for(backup_dir, RETENTION_DAYS="1", RETENTION_WEEKS="0", RETENTION_MONTHS="0")
    env.update(
        PYTHONPATH=str(hook),
        SEAWALL_TEST_UNLINK_LOG=str(log),
        SEAWALL_TEST_KILL_AFTER=str(kill_after),
    )
    return subprocess.run([SEAWALL, "prune"], env=env, capture_output=True, text=True)


def _assert_no_manifest_without_artifacts(backup_dir: Path) -> list[str]:
    scan = Catalog(LocalStorage(backup_dir)).scan()
    assert scan.errors == []
    for m in scan.manifests:
        for art in m.artifacts:
            assert (backup_dir / "postgresql/logical/app" / m.id / art.name).is_file(), (
                f"{m.id} has a manifest but its {art.name} is gone"
            )
    return sorted(m.id for m in scan.manifests)


def test_prune_deletes_the_manifest_first_kill_9_after_every_unlink(
    backup_dir: Path, tmp_path: Path
) -> None:
    """Deterministic: the unlink sequence is recorded, and prune is killed
    after the 1st, 2nd, ... N-th unlink; each crash leaves no manifest whose
    artifacts are missing, and the next prune finishes the job."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILLER)
    log = tmp_path / "unlinks.log"
    template = tmp_path / "template"
    catalog = Catalog(LocalStorage(template))
    now = datetime.now(UTC)
    made = [add_backup(catalog, end=now - timedelta(days=d, hours=1)) for d in range(4)]
    for m in made:  # a second artifact, so that order within a backup matters
        extra = template / "postgresql/logical/app" / m.id / "globals.sql.zst"
        data = (template / "postgresql/logical/app" / m.id / "dump.bin.zst").read_bytes()
        extra.write_bytes(data)
        m.artifacts.append(m.artifacts[0].model_copy(update={"name": "globals.sql.zst"}))
        catalog.write(m)

    shutil.copytree(template, backup_dir, dirs_exist_ok=True)
    res = _prune_recording(backup_dir, hook, log)
    assert res.returncode == 0, res.stderr
    unlinks = log.read_text().splitlines()
    assert _assert_no_manifest_without_artifacts(backup_dir) == [made[0].id]
    for m in made[1:]:
        mine = [i for i, p in enumerate(unlinks) if f"/{m.id}/" in p]
        names = [Path(unlinks[i]).name for i in mine]
        assert names and names[0] == "manifest.json", f"{m.id} deleted in order {names}"
        assert {"dump.bin.zst", "globals.sql.zst"} <= set(names)

    for n in range(1, len(unlinks) + 1):
        shutil.rmtree(backup_dir / "postgresql")
        shutil.copytree(template, backup_dir, dirs_exist_ok=True)
        killed = _prune_recording(backup_dir, hook, log, kill_after=n)
        assert killed.returncode == -signal.SIGKILL, (n, killed.stderr)
        assert len(log.read_text().splitlines()) == n
        survivors = _assert_no_manifest_without_artifacts(backup_dir)
        assert made[0].id in survivors
        again = _prune_recording(backup_dir, hook, log)
        assert again.returncode == 0, again.stderr
        assert _assert_no_manifest_without_artifacts(backup_dir) == [made[0].id]


def test_prune_removes_empty_backup_dirs_left_by_a_crash(backup_dir: Path) -> None:
    """A kill between a backup's last unlink and its rmdir leaves an empty
    directory that no listing sees; the next prune sweeps it."""
    catalog = Catalog(LocalStorage(backup_dir))
    kept = add_backup(catalog, end=NOW - timedelta(hours=1))
    empty = backup_dir / "postgresql/logical/app/20250101T000000Z-dead"
    empty.mkdir(parents=True)
    wal_dir = backup_dir / "postgresql/wal/main/0000000100000000"
    wal_dir.mkdir(parents=True)
    res = subprocess.run(
        [SEAWALL, "prune"], env=env_for(backup_dir), capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert not empty.exists()
    assert wal_dir.is_dir(), "the WAL archive is not prune's to sweep"
    assert (backup_dir / "postgresql/logical/app" / kept.id).is_dir()
