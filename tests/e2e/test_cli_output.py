"""Output for people and for scripts, as an operator meets it (issue 12).

``--json`` failures print one parseable error object; help shows flags
without a ``<bool>`` type and the exit-code table once (``seawall --help``);
a mistyped command gets a sensible suggestion or none.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SEAWALL


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAWALL_", "DB_", "PG"))}
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEAWALL, *args], env=env, capture_output=True, text=True, timeout=120)


def test_json_config_error_is_one_json_object(tmp_path: Path) -> None:
    res = _run(["postgres", "list", "--json"], _env(BACKUP_DIR=str(tmp_path), COMPRESSION="brotli"))
    assert res.returncode == 2
    err = json.loads(res.stdout)["error"]
    assert err["exit_code"] == 2 and err["kind"] == "config"
    assert "COMPRESSION" in err["message"]
    assert "COMPRESSION" in res.stderr  # the one-line message for people is still there


def test_json_usage_error_is_one_json_object(tmp_path: Path) -> None:
    res = _run(["prune", "--json", "--no-such-flag"], _env(BACKUP_DIR=str(tmp_path)))
    assert res.returncode == 2
    err = json.loads(res.stdout)["error"]
    assert err == {"kind": "usage", "message": err["message"], "exit_code": 2}
    assert "--no-such-flag" in err["message"]


def test_without_json_a_failure_prints_nothing_on_stdout(tmp_path: Path) -> None:
    res = _run(["postgres", "list"], _env(BACKUP_DIR=str(tmp_path), COMPRESSION="brotli"))
    assert res.returncode == 2 and res.stdout == ""


def test_flags_show_no_bool_type() -> None:
    for args in (["--help"], ["postgres", "list", "--help"], ["backup", "--help"]):
        res = _run(args, _env())
        assert res.returncode == 0, res.stderr
        assert "<bool>" not in res.stdout, args
        assert "--json" in res.stdout or "--quiet" in res.stdout


def test_exit_code_table_only_in_top_level_help() -> None:
    top = _run(["--help"], _env())
    assert "Exit codes" in top.stdout and "another seawall run" in top.stdout.lower()
    for args in (["postgres", "--help"], ["qdrant", "--help"], ["postgres", "list", "--help"]):
        res = _run(args, _env())
        assert res.returncode == 0
        assert "another seawall run" not in res.stdout.lower(), args


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (["expire"], "Did you mean 'prune'?"),
        (["prnue"], "Did you mean 'prune'?"),
        (["list"], "Did you mean 'postgres list', 'qdrant list'?"),
        (["postgres", "lst"], "Did you mean 'list'?"),
        (["postgres", "dump"], "Did you mean 'backup'?"),
    ],
)
def test_misspelt_command_suggests_something_sensible(typed: list[str], expected: str) -> None:
    res = _run(typed, _env())
    assert res.returncode == 2
    assert expected in " ".join(res.stderr.split()).replace("│", "").replace("  ", " ")
    assert "exporter" not in res.stderr


def test_unrelated_word_suggests_nothing() -> None:
    res = _run(["xylophone"], _env())
    assert res.returncode == 2
    assert "No such command" in res.stderr and "Did you mean" not in res.stderr


@pytest.mark.parametrize(
    "args", [["info"], ["qdrant", "list"], ["postgres", "list"], ["info", "--json"]]
)
def test_a_reader_that_is_gone_is_exit_120_not_an_internal_error(
    tmp_path: Path, args: list[str]
) -> None:
    """`seawall qdrant list | head -1`: the pipe closes under the command's output.

    Documented (docs/exit-codes.md) as 120, as Python itself does; it was
    "internal error: BrokenPipeError ... please report it" (exit 1). The read
    end is closed before seawall starts, so the first write fails every time.
    """
    repo = tmp_path / "repo"
    env = _env(BACKUP_DIR=str(repo))
    assert _run(["init"], env).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run(
            [SEAWALL, *args],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert res.returncode == 120, res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
