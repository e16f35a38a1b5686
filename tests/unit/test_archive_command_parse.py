"""How ``seawall check`` reads archive_command (the text half; the WAL switch in
tests/integration/health/test_check.py is the other half)."""

from __future__ import annotations

import pytest

from seawall.health.archive_command import parse, same_dir


def test_plain_command_calls_seawall_without_naming_a_repository() -> None:
    cmd = parse("seawall postgres wal-push %p")
    assert cmd.calls_seawall and cmd.has_placeholder
    assert cmd.backup_dir is None and cmd.cluster is None


def test_env_prefix_names_repository_and_cluster() -> None:
    cmd = parse(
        "env BACKUP_DIR=/backups PG_CLUSTER_NAME=main ENCRYPTION=true "
        "ENCRYPTION_RECIPIENTS=age1xyz /usr/local/bin/seawall postgres wal-push %p"
    )
    assert cmd.calls_seawall and cmd.backup_dir == "/backups" and cmd.cluster == "main"


def test_seawall_prefixed_names_win_like_in_settings() -> None:
    cmd = parse(
        "env BACKUP_DIR=/old SEAWALL_BACKUP_DIR=/new SEAWALL_PG_CLUSTER_NAME=c2 "
        "PG_CLUSTER_NAME=c1 seawall postgres wal-push %p"
    )
    assert cmd.backup_dir == "/new" and cmd.cluster == "c2"


@pytest.mark.parametrize(
    "text",
    [
        "seawall --backup-dir /srv/b postgres wal-push %p",
        "seawall --backup-dir=/srv/b postgres wal-push %p",
        "sh -c 'BACKUP_DIR=/srv/b exec seawall postgres wal-push \"$0\"' %p",
    ],
)
def test_backup_dir_in_other_spellings(text: str) -> None:
    assert parse(text).backup_dir == "/srv/b"


def test_wrapper_script_is_recognised_but_not_resolved() -> None:
    cmd = parse("/etc/seawall/wal-push.sh %p")
    assert cmd.mentions_seawall and not cmd.calls_seawall and cmd.backup_dir is None


@pytest.mark.parametrize("text", ["cp %p /mnt/archive/%f", "/bin/true", ""])
def test_other_commands_do_not_call_seawall(text: str) -> None:
    assert not parse(text).mentions_seawall


def test_missing_placeholder_and_unbalanced_quotes() -> None:
    assert not parse("seawall postgres wal-push").has_placeholder
    assert parse("'seawall postgres wal-push %p").calls_seawall  # shlex fails: plain split


def test_same_dir_ignores_trailing_slash_and_dots() -> None:
    assert same_dir("/backups/", "/backups") and same_dir("/a/./b", "/a/b")
    assert not same_dir("/backups", "/backups2")
