"""The lean wal-fetch: what it restores, and that everything else still fails as before.

The lean path (``postgres/wal/fastfetch.py``) restores a zstd segment
(age X25519 or plain) and refuses nothing itself: a corrupt file, a wrong
key, a name archived twice, gzip or a passphrase go to the general path
before ``%p`` is touched, which explains loudly. A file that is not
archived is a quiet exit 1 on both paths. Each case runs the real command
in a fresh process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.postgres.wal import fastfetch
from tests.integration.wal.test_wal_fast_imports import segment

NAME = "000000010000000000000007"


def _env(tmp: Path, age_keys: tuple[Path, str], **extra: str) -> dict[str, str]:
    key, public = age_keys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "ENCRYPTION"))}
    env.update(
        BACKUP_DIR=str(tmp / "backups"),
        ENCRYPTION="true",
        ENCRYPTION_RECIPIENTS=public,
        ENCRYPTION_IDENTITY_FILE=str(key),
        SEAWALL_WAL_READ_AHEAD="0",
    )
    env.update(extra)
    return env


def _seawall(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seawall", *args], env=env, capture_output=True, text=True
    )


def _pushed(tmp: Path, env: dict[str, str], name: str = NAME) -> tuple[Path, Path]:
    seg = segment(tmp, name)
    res = _seawall(["postgres", "wal-push", str(seg)], env)
    assert res.returncode == 0, res.stderr
    (stored,) = (tmp / "backups").rglob(f"{name}-*")
    return seg, stored


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".seawall-" in p.name)


def test_lean_fetch_restores_and_checks(
    tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(tmp_path, age_keys)
    seg, stored = _pushed(tmp_path, env)
    out = tmp_path / "out"
    out.mkdir()
    # in this process, so that the lean path itself is what is checked
    for k, v in env.items():
        if k.startswith(("BACKUP", "ENCRYPTION", "SEAWALL_")):
            monkeypatch.setenv(k, v)
    path = fastfetch.fetch(NAME, str(out / "RECOVERYXLOG"))
    assert path == str(stored)
    assert (out / "RECOVERYXLOG").read_bytes() == seg.read_bytes()
    with pytest.raises(fastfetch.Missing):
        fastfetch.fetch("000000010000000000000008", str(out / "x"))
    with pytest.raises(fastfetch.Missing):
        fastfetch.fetch("00000002.history", str(out / "x"))
    # the content does not hash to the name: nothing written, Fallback
    wrong = stored.with_name(stored.name.replace(stored.name[25:35], "0" * 10))
    stored.rename(wrong)
    with pytest.raises(fastfetch.Fallback):
        fastfetch.fetch(NAME, str(out / "y"))
    assert not (out / "y").exists()
    assert _leftovers(out) == []


@pytest.mark.parametrize("case", ["flipped byte", "wrong name", "wrong key", "twice"])
def test_corrupt_or_doubtful_is_loud(case: str, tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    env = _env(tmp_path, age_keys)
    _, stored = _pushed(tmp_path, env)
    if case == "flipped byte":
        blob = bytearray(stored.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        stored.write_bytes(bytes(blob))
    elif case == "wrong name":  # decodes fine, but not to the sha256 its name records
        stored.rename(stored.with_name(stored.name.replace(stored.name[25:35], "0" * 10)))
    elif case == "wrong key":
        other = tmp_path / "other.key"
        subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
        env["ENCRYPTION_IDENTITY_FILE"] = str(other)
    else:  # a second version of the name (e.g. copied by hand)
        twin = stored.with_name(stored.name.replace(stored.name[25:35], "1" * 10))
        twin.write_bytes(stored.read_bytes())
    dest = tmp_path / "RECOVERYXLOG"
    res = _seawall(["postgres", "wal-fetch", NAME, str(dest)], env)
    assert res.returncode not in (0, 1), (case, res.returncode, res.stderr)
    assert "error" in res.stderr, res.stderr
    expected = {
        "flipped byte": "corrupt",
        "wrong name": "corrupt",
        "wrong key": "identit",
        "twice": "more than once",
    }[case]
    assert expected in res.stderr, res.stderr
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


def test_missing_is_quiet(tmp_path: Path, age_keys: tuple[Path, str]) -> None:
    env = _env(tmp_path, age_keys)
    _pushed(tmp_path, env)
    for name in ("000000010000000000000008", "000000020000000000000007", "00000002.history"):
        res = _seawall(["postgres", "wal-fetch", name, str(tmp_path / "x")], env)
        assert (res.returncode, res.stderr) == (1, ""), name
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("case", ["gzip", "passphrase", "unencrypted"])
def test_other_configurations_fall_back_and_work(
    case: str, tmp_path: Path, age_keys: tuple[Path, str]
) -> None:
    if case == "gzip":
        env = _env(tmp_path, age_keys, COMPRESSION="gzip")
    elif case == "passphrase":
        env = _env(tmp_path, age_keys, ENCRYPTION_KEY="correct horse battery staple")
        env.pop("ENCRYPTION_RECIPIENTS")  # a passphrase beside recipients is refused (exit 2)
    else:
        env = _env(tmp_path, age_keys, ENCRYPTION="false")
        for k in ("ENCRYPTION_RECIPIENTS", "ENCRYPTION_IDENTITY_FILE"):
            env.pop(k)
    seg, stored = _pushed(tmp_path, env)
    assert stored.name.endswith(
        {"gzip": ".gz.age", "passphrase": ".age", "unencrypted": ".zst"}[case]
    )
    dest = tmp_path / "RECOVERYXLOG"
    res = _seawall(["postgres", "wal-fetch", NAME, str(dest)], env)
    assert res.returncode == 0, res.stderr
    assert dest.read_bytes() == seg.read_bytes()
