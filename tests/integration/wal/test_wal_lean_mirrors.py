"""The lean wal-push into a local primary with MIRRORS (no general-path detour).

What the general path does for a mirrored write (storage/mirror.py), the lean
push does too: the intent record ``mirrors/<id>/pending/<key>`` in the primary
*before* the commit, the copy (checked, atomic) after it, the record removed
once the mirror holds the segment; a mirror that fails keeps its record and
gets a ``down`` marker, and the next push skips it at once. Real processes,
real files, a real dead endpoint; the probe's ``sys.modules`` shows that the
general path (``seawall.postgres.wal.push``), Typer and pydantic stayed out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.ports import free_loopback_port
from seawall.postgres.wal import fastpush
from seawall.storage.mirror_layout import down_marker, mirror_id, pending_prefix
from tests.conftest import run_seawall
from tests.integration.wal.test_wal_lean_push import (
    archive_dir,
    env_for,
    make_segment,
    prepare_archive,
    stored,
)

PROBE = """
import json, sys
from seawall.entry import main
code = main(["postgres", "wal-push", sys.argv[1]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

#: loaded by the general path only (or by what the lean path was made lean to avoid)
GENERAL = ("seawall.postgres.wal.push", "seawall.settings", "typer", "pydantic", "psycopg")


def _push(seg: Path, env: dict[str, str]) -> tuple[int, str]:
    """wal-push in a fresh interpreter; (exit code, stderr). Fails if the general path ran."""
    res = subprocess.run(
        [sys.executable, "-c", PROBE, str(seg)], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    general = [m for m in GENERAL if m in out["modules"]]
    assert general == [], f"the push took the general path: {general}"
    return out["code"], res.stderr


def _records(backup: Path, location: str) -> list[str]:
    root = backup / pending_prefix(mirror_id(location))
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _wal_files(root: Path) -> dict[str, bytes]:
    base = root / "postgresql" / "wal"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in base.rglob("*")
        if p.is_file() and ".partial-" not in p.name and p.name != "archive.json"
    }


def test_lean_push_copies_to_a_local_mirror(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    backup, mirror = tmp_path / "b", tmp_path / "mirror"
    prepare_archive(backup)
    env = env_for(backup, age_keys[1], MIRRORS=str(mirror))
    seg = make_segment(tmp_path)
    code, err = _push(seg, env)
    assert (code, err) == (0, "")
    assert len(_wal_files(backup)) == 1
    assert _wal_files(mirror) == _wal_files(backup)  # same key, same bytes
    assert _records(backup, str(mirror)) == []
    assert not (backup / down_marker(mirror_id(str(mirror)))).exists()
    # PostgreSQL retrying the push: success, nothing new anywhere
    assert _push(seg, env) == (0, "")
    assert _wal_files(mirror) == _wal_files(backup) and _records(backup, str(mirror)) == []


def test_intent_is_recorded_before_the_commit(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    """fastpush alone (a process killed right after its commit, before any copy) leaves
    the record ``seawall sync`` needs; sync then completes the mirror."""
    backup, mirror = tmp_path / "b", tmp_path / "mirror"
    prepare_archive(backup)
    env = env_for(backup, age_keys[1], MIRRORS=str(mirror))
    seg = make_segment(tmp_path)
    mid = mirror_id(str(mirror))
    pushed = fastpush.push(str(seg), env, mirrors=[(mid, str(mirror))])
    key = f"postgresql/wal/main/0000000100000000/{pushed.name}"
    assert (pushed.root, pushed.key, pushed.committed) == (str(backup), key, True)
    assert _records(backup, str(mirror)) == [key]
    body = json.loads((backup / pending_prefix(mid) / key).read_text())
    assert body["key"] == key and body["mirror"] == str(mirror) and body["what"] == "copy"
    assert oct((backup / pending_prefix(mid) / key).stat().st_mode & 0o777) == "0o600"
    # a retry that finds the segment archived keeps the (older) record, adds none
    again = fastpush.push(str(seg), env, mirrors=[(mid, str(mirror))])
    assert (again.key, again.committed) == (key, False)
    assert _records(backup, str(mirror)) == [key]
    # a push that commits nothing removes what it wrote: another content, same name
    (tmp_path / "other").mkdir()
    other = make_segment(tmp_path / "other", seed=7)
    with pytest.raises(fastpush.Fallback, match="conflict"):
        fastpush.push(str(other), env, mirrors=[(mid, str(mirror))])
    assert _records(backup, str(mirror)) == [key]

    # PostgreSQL retrying the killed push: a duplicate, but its record says the
    # mirror lacks it, so the retry copies it and clears the record
    assert _push(seg, env) == (0, "")
    assert _records(backup, str(mirror)) == []
    assert _wal_files(mirror) == _wal_files(backup)
    res = run_seawall(["sync", "--json"], {**env, "LOG_FORMAT": "text"})
    assert res.returncode == 0, res.stderr
    assert _records(backup, str(mirror)) == []
    assert _wal_files(mirror) == _wal_files(backup)


def test_a_mirror_that_is_down_never_stalls_the_archive(
    tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    """An S3 mirror whose endpoint refuses connections (nothing listens), then a local
    mirror whose path cannot exist: each push is archived (exit 0), the lag recorded;
    after the first failure the next push skips the mirror without trying it."""
    backup = tmp_path / "b"
    prepare_archive(backup)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the mirror's directory should be")
    local = str(blocker / "mirror")
    s3 = "s3://mirror-bucket/repo"
    env = env_for(
        backup,
        age_keys[1],
        MIRRORS=f"{s3},{local}",
        MIRROR_TIMEOUT="2",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_loopback_port()}",
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="not-a-real-secret-000000000000000000000",
        AWS_REGION="us-east-1",
    )
    env = {k: v for k, v in env.items() if not k.startswith("AWS_PROFILE")}
    segs = [make_segment(tmp_path, f"00000001000000000000000{n}", seed=n) for n in (3, 4)]
    code, first = _push(segs[0], env)
    assert code == 0, first
    assert first.count("recorded as lagging") == 2, first  # both mirrors tried, both failed
    code, second = _push(segs[1], env)
    assert code == 0, second
    assert second.count("is down") == 2, second  # skipped at once: not tried again
    assert len(stored(backup)) == 3  # archive.json and both segments, in the primary
    for location in (s3, local):
        names = [k.rsplit("/", 1)[-1][:24] for k in _records(backup, location)]
        assert names == [s.name for s in segs], (location, names)
        assert (backup / down_marker(mirror_id(location))).is_file()

    # the local mirror comes back: sync copies what the records name
    blocker.unlink()
    env["MIRRORS"] = local
    res = run_seawall(["sync", "--json"], {**env, "LOG_FORMAT": "text"})
    assert res.returncode == 0, res.stderr
    assert _records(backup, local) == []
    assert _wal_files(Path(local)) == _wal_files(backup)
    assert os.listdir(archive_dir(backup) / "0000000100000000")
