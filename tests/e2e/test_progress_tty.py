"""A person at a terminal: the progress bar and log lines stay apart (issue 12).

``seawall postgres backup`` runs with its stderr on a real pseudo-terminal
(python's pty module) and its stdout on a pipe, as ``seawall ... > out``
at a shell. The bar must be drawn on the terminal (stderr) only, never into
stdout; the log line emitted while the bar is live ("backup stored") must be
a line of its own, not appended to the bar's line; the pg_dump bar has a
total, the database size, and says it is an estimate.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time

from tests.conftest import SEAWALL
from tests.integration.postgres_logical.helpers import SMALL_SQL, seawall_env
from tests.support.pgcluster import PgCluster

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _visible_lines(raw: str) -> list[str]:
    """What each terminal line shows: the text after its last carriage return, escapes gone."""
    raw = raw.replace("\r\n", "\n")  # the terminal turns each newline into CR LF
    return [CSI.sub("", line.rsplit("\r", 1)[-1]) for line in raw.split("\n")]


def _run_on_pty(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        [SEAWALL, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    code = proc.wait(60)
    return code, out, b"".join(chunks).decode("utf-8", "replace")


def test_bar_on_the_terminal_and_log_lines_apart(pg: PgCluster, backup_dir: object) -> None:
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    pg.psql(
        "CREATE TABLE filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 300000) g",
        "items",
    )
    env = seawall_env(pg, backup_dir, DB_NAME="items", LOG_FORMAT="auto")  # type: ignore[arg-type]
    env.update(TERM="xterm", LANG="C.UTF-8", PYTHONIOENCODING="utf-8", COLUMNS="160")
    code, out, tty = _run_on_pty(["postgres", "backup"], env)
    assert code == 0, out + tty

    # results on stdout, clean; the bar only on the terminal
    assert "items: backup" in out and " ok, " in out
    assert "\x1b" not in out and "━" not in out
    assert "━" in tty and "pg_dump items" in tty
    assert "an estimate" in tty  # the total is the database size, and says so

    lines = _visible_lines(tty)
    stored = [line for line in lines if "backup stored" in line]
    assert stored, tty
    for line in stored:
        assert "━" not in line and "pg_dump items" not in line, repr(line)
        assert line.split()[1] == "info", repr(line)  # a text log line of its own


def test_without_a_terminal_no_bar_and_json_logs(pg: PgCluster, backup_dir: object) -> None:
    pg.psql("CREATE DATABASE items")
    pg.psql(SMALL_SQL, "items")
    env = seawall_env(pg, backup_dir, DB_NAME="items", LOG_FORMAT="auto")  # type: ignore[arg-type]
    res = subprocess.run(
        [SEAWALL, "postgres", "backup"], env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "━" not in res.stderr + res.stdout and "\x1b" not in res.stderr + res.stdout
    import json

    logs = [json.loads(line) for line in res.stderr.splitlines()]
    assert any(entry["msg"] == "backup stored" for entry in logs)
