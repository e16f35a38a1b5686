"""``seawall check`` against real clusters: it passes on a correct setup and fails,
naming the problem, for each way the setup can be wrong (issue 15).

Every case is real: archiving switched off, an archive_command writing into
another repository (visible in the command, and hidden in a wrapper script's
environment), a read-only tmpfs as the repository, a recipient with a typo,
an identity that does not belong to the recipients.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SEAWALL
from tests.integration.wal.helpers import Archived, archive_command, make_archived
from tests.support.pgcluster import PgCluster


def _lines(res: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name -> its whole line (outcome first)."""
    out = {}
    for line in res.stdout.splitlines():
        _outcome, _, rest = line.partition("  ")
        name = rest.split(":", 1)[0].strip()
        out[name] = line
    return out


@pytest.fixture
def arch(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> Archived:
    return make_archived(pg_factory, backup_dir, age_keys)


def test_check_passes_on_a_correct_setup(arch: Archived, backup_dir: Path) -> None:
    res = arch.seawall("check", "--timeout", "120")
    assert res.returncode == 0, res.stdout + res.stderr
    lines = _lines(res)
    assert set(lines) == {
        "database",
        "archive_mode",
        "archive_command",
        "wal switch",
        "wal readable",
        "repository",
        "encryption",
    }, res.stdout
    assert all(line.startswith("ok ") for line in lines.values()), res.stdout
    assert f"into {backup_dir}" in lines["archive_command"]
    assert "decodes with this configuration (sha256 matches)" in lines["wal readable"]
    assert "decrypted it with the configured identity" in lines["encryption"]
    # the segment it names really is in this repository, and the probes are gone
    segment = lines["wal switch"].split("segment ")[1].split()[0]
    assert list((backup_dir / "postgresql" / "wal" / "main").rglob(f"{segment}-*"))
    assert not [p for p in (backup_dir / "check").rglob("*") if p.is_file()]

    js = arch.seawall("check", "--json", "--timeout", "120")
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["ok"] is True and len(data["checks"]) == 7


def test_archive_mode_off(pg: PgCluster, backup_dir: Path) -> None:
    res = subprocess.run(
        [SEAWALL, "check"], env=pg.env(BACKUP_DIR=str(backup_dir)), capture_output=True, text=True
    )
    assert res.returncode == 11, res.stdout + res.stderr
    lines = _lines(res)
    assert lines["archive_mode"].startswith("FAIL") and "archive_mode is 'off'" in res.stdout
    assert "set archive_mode = on" in lines["archive_mode"]
    assert lines["wal switch"].startswith("skip")
    assert lines["repository"].startswith("ok") and lines["database"].startswith("ok")
    assert "check failed: archive_mode" in res.stderr


def test_archive_command_names_another_repository(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    other = Path(tempfile.mkdtemp(prefix="seawall-other-", dir="/tmp"))
    other.chmod(0o777)
    try:
        key, public = age_keys
        pg = pg_factory(
            extra_conf={"archive_mode": "on", "archive_command": archive_command(other, public)}
        )
        arch = Archived(pg, backup_dir, key, public)
        res = arch.seawall("check", "--timeout", "120")
        assert res.returncode == 11, res.stdout + res.stderr
        lines = _lines(res)
        assert lines["archive_command"].startswith("FAIL"), res.stdout
        assert f"pushes to BACKUP_DIR {other}" in lines["archive_command"]
        assert f"repository is {backup_dir}" in lines["archive_command"]
        # the switch really went to the other repository, and check says so
        assert lines["wal switch"].startswith("FAIL")
        assert "is not in" in lines["wal switch"] and "somewhere else" in lines["wal switch"]
        assert list((other / "postgresql" / "wal").rglob("0000000*"))
    finally:
        subprocess.run(["rm", "-rf", str(other)], check=False)


def test_wrapper_script_archiving_elsewhere_is_caught_by_the_switch(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    """The command text shows no repository; only the real WAL switch can tell."""
    other = Path(tempfile.mkdtemp(prefix="seawall-other-", dir="/tmp"))
    other.chmod(0o777)
    try:
        key, public = age_keys
        script = other / "wal-push.sh"
        script.write_text(
            "#!/bin/sh\n"
            f"export BACKUP_DIR={other}/repo PG_CLUSTER_NAME=main\n"
            f"export ENCRYPTION=true ENCRYPTION_RECIPIENTS={public}\n"
            f'exec {SEAWALL} postgres wal-push "$1"\n'
        )
        script.chmod(0o755)
        pg = pg_factory(extra_conf={"archive_mode": "on", "archive_command": f"'{script} %p'"})
        res = Archived(pg, backup_dir, key, public).seawall("check", "--timeout", "120")
        assert res.returncode == 11, res.stdout + res.stderr
        lines = _lines(res)
        assert lines["archive_command"].startswith("warn"), res.stdout
        assert lines["wal switch"].startswith("FAIL") and "is not in" in lines["wal switch"]
    finally:
        subprocess.run(["rm", "-rf", str(other)], check=False)


def test_archive_command_not_seawall(
    pg_factory: Callable[..., PgCluster], backup_dir: Path
) -> None:
    pg = pg_factory(extra_conf={"archive_mode": "on", "archive_command": "'/bin/true %p'"})
    res = subprocess.run(
        [SEAWALL, "check"], env=pg.env(BACKUP_DIR=str(backup_dir)), capture_output=True, text=True
    )
    assert res.returncode == 11
    lines = _lines(res)
    assert lines["archive_command"].startswith("FAIL")
    assert "does not call seawall wal-push" in lines["archive_command"]


@pytest.fixture
def read_only_repo() -> Iterator[Path]:
    point = Path(tempfile.mkdtemp(prefix="seawall-tmpfs-", dir="/tmp"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", str(point)], check=True
    )
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
    yield point
    subprocess.run(["umount", str(point)], check=True)
    point.rmdir()


def test_unwritable_repository(arch: Archived, read_only_repo: Path) -> None:
    res = arch.seawall("check", "--timeout", "60", SEAWALL_BACKUP_DIR=str(read_only_repo))
    assert res.returncode == 11, res.stdout + res.stderr
    lines = _lines(res)
    assert lines["repository"].startswith("FAIL"), res.stdout
    assert "Read-only file system" in lines["repository"]
    assert str(read_only_repo) in lines["repository"]
    assert lines["encryption"].startswith("skip")


def test_recipient_that_does_not_parse(arch: Archived) -> None:
    bad = arch.public_key[:-3] + "qqq"  # a typo: the checksum no longer matches
    res = arch.seawall("check", "--timeout", "120", SEAWALL_ENCRYPTION_RECIPIENTS=bad)
    assert res.returncode == 11, res.stdout + res.stderr
    lines = _lines(res)
    assert lines["encryption"].startswith("FAIL"), res.stdout
    assert "ENCRYPTION_RECIPIENTS" in lines["encryption"]
    assert "is not a valid age public key" in lines["encryption"]
    assert lines["repository"].startswith("ok") and lines["wal switch"].startswith("ok")


def test_identity_that_does_not_match_the_recipients(arch: Archived, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    res = arch.seawall("check", "--timeout", "120", SEAWALL_ENCRYPTION_IDENTITY_FILE=str(other))
    assert res.returncode == 11, res.stdout + res.stderr
    line = _lines(res)["encryption"]
    assert line.startswith("FAIL") and "cannot decrypt" in line, res.stdout
    assert "AGE-SECRET-KEY" not in res.stdout + res.stderr


def test_archiver_encrypting_to_a_key_restores_do_not_have(
    pg_factory: Callable[..., PgCluster],
    backup_dir: Path,
    age_keys: tuple[Path, str],
    tmp_path: Path,
) -> None:
    """archive_command with another recipient: WAL lands, but no restore could read it."""
    key, public = age_keys
    stranger = tmp_path / "stranger.key"
    subprocess.run(["age-keygen", "-o", str(stranger)], check=True, capture_output=True)
    stranger_public = subprocess.run(
        ["age-keygen", "-y", str(stranger)], check=True, capture_output=True, text=True
    ).stdout.strip()
    pg = pg_factory(
        extra_conf={
            "archive_mode": "on",
            "archive_command": archive_command(backup_dir, stranger_public),
        }
    )
    res = Archived(pg, backup_dir, key, public).seawall("check", "--timeout", "120")
    assert res.returncode == 11, res.stdout + res.stderr
    lines = _lines(res)
    assert lines["wal switch"].startswith("ok"), res.stdout
    assert lines["wal readable"].startswith("FAIL"), res.stdout
    assert "cannot be decoded with this configuration" in lines["wal readable"]
    assert lines["encryption"].startswith("ok")  # our own keys are consistent


def test_archiver_storing_in_clear_while_encryption_is_on(
    pg_factory: Callable[..., PgCluster], backup_dir: Path, age_keys: tuple[Path, str]
) -> None:
    key, public = age_keys
    command = f"'env BACKUP_DIR={backup_dir} PG_CLUSTER_NAME=main {SEAWALL} postgres wal-push %p'"
    pg = pg_factory(extra_conf={"archive_mode": "on", "archive_command": command})
    res = Archived(pg, backup_dir, key, public).seawall("check", "--timeout", "120")
    assert res.returncode == 11, res.stdout + res.stderr
    line = _lines(res)["wal readable"]
    assert line.startswith("FAIL") and "stored unencrypted" in line, res.stdout


def test_database_down_is_one_failed_line_and_the_rest_still_runs(backup_dir: Path) -> None:
    from seawall.ports import free_loopback_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DB_", "SEAWALL_"))}
    env.update(PGHOST="127.0.0.1", PGPORT=str(free_loopback_port()), BACKUP_DIR=str(backup_dir))
    res = subprocess.run([SEAWALL, "check"], env=env, capture_output=True, text=True)
    assert res.returncode == 11, res.stdout + res.stderr
    lines = _lines(res)
    assert lines["database"].startswith("FAIL") and "cannot connect" in lines["database"]
    assert lines["repository"].startswith("ok") and lines["encryption"].startswith("ok")
