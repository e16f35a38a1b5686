"""Untrusted names never escape their directory; series locks exclude each other."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from seawall.catalog.locks import LockInfo, list_locks, series_lock
from seawall.catalog.naming import MAX_REVERSIBLE, decode_segment, encode_segment
from seawall.errors import LockedError


@given(st.text(max_size=80))
def test_encode_segment_is_safe_and_reversible(name: str) -> None:
    seg = encode_segment(name)
    assert "/" not in seg and "\x00" not in seg and seg not in ("", ".", "..")
    assert not seg.startswith(".")
    # the lock file name around it fits NAME_MAX
    assert len(seg.encode()) <= MAX_REVERSIBLE
    if not seg.startswith("%="):
        assert decode_segment(seg) == name
    assert encode_segment(decode_segment(seg)) == seg


@given(st.text(min_size=30, max_size=255))
def test_a_long_name_gets_a_short_stable_segment_of_its_own(name: str) -> None:
    seg = encode_segment(name)
    assert len(seg) <= MAX_REVERSIBLE and seg == encode_segment(name)
    assert encode_segment(decode_segment(seg)) == seg
    assert encode_segment(name + "!") != seg


def test_names_that_fitted_keep_their_segment() -> None:
    """Existing series directories do not move: only encodings over the limit change."""
    assert encode_segment("ü" * 38) == "%" + "%C3%BC" * 38  # 229 characters: the lock fitted
    assert encode_segment("ü" * 39).startswith("%=")  # 235: no lock file could be made
    assert encode_segment("知" * 26).startswith("%=")


def _hold(backup_dir: str, release: Event) -> None:
    with series_lock(Path(backup_dir), "postgresql", "logical", "app", timeout=1, command="holder"):
        release.wait(120)  # until the test is done with it, however slow the machine


def _holder_info(backup_dir: Path) -> list[LockInfo]:
    """The held locks whose holder has written its info.

    The holder writes its pid/command/start into the lock file just *after*
    flock succeeds (it cannot before: the file is the previous holder's
    until then), so for a moment a lock is held with no info; a reader
    polling for "held" alone caught that moment (2 in 100 with a 50 ms
    poll, 28 in 100 polling without pause, measured) and saw command None.
    """
    return [i for i in list_locks(backup_dir) if i.held and i.command is not None]


def test_second_run_fails_with_lock_error(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    release = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path), release))
    proc.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _holder_info(tmp_path) and proc.is_alive():
            time.sleep(0.05)
        info = _holder_info(tmp_path)
        assert info and info[0].command == "holder" and info[0].series == "app"
        assert info[0].pid == proc.pid
        started = time.monotonic()
        with (
            pytest.raises(LockedError, match="another seawall run") as exc,
            series_lock(tmp_path, "postgresql", "logical", "app", timeout=0.5, command="second"),
        ):
            pass
        assert exc.value.exit_code == 6
        assert f"pid {proc.pid}, holder" in str(exc.value)
        assert time.monotonic() - started >= 0.5
        # Another series is not blocked.
        with series_lock(tmp_path, "postgresql", "logical", "other", timeout=0.5, command="x"):
            pass
    finally:
        release.set()
        proc.join()
    # The holder is gone: the lock is free again (released by the kernel).
    with series_lock(tmp_path, "postgresql", "logical", "app", timeout=0.5, command="third"):
        pass


def test_an_empty_command_is_known_on_a_flock_file_and_none_on_a_lease(tmp_path: Path) -> None:
    """The one LockInfo builder keeps the two listings' corner: a flock file's details
    are written after flock succeeds, so a present ``command`` (even "") means "written"
    and only an absent one reads as None (details unknown yet); a lease carries its
    details from the start, and an empty command there reads as None."""
    import fcntl
    import json
    import os

    from seawall.catalog.locks import LOCK_DIR, _list_leased_locks, lock_path
    from seawall.storage.factory import open_storage

    body = json.dumps({"pid": 4321, "command": "", "started_at": "2026-01-02T03:04:05+00:00"})
    flocked = lock_path(tmp_path / "vol", "postgresql", "logical", "app")
    flocked.parent.mkdir(parents=True)
    flocked.write_text(body)
    fd = os.open(flocked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held by this process: the listing probes it
        [info] = list_locks(tmp_path / "vol")
    finally:
        os.close(fd)
    assert (info.held, info.command, info.pid) == (True, "", 4321)
    assert info.started_at is not None and info.started_at.year == 2026

    leases = tmp_path / "leases"
    storage = open_storage(leases)
    storage.write_bytes(f"{LOCK_DIR}/postgresql.logical.app.lock", body.encode())
    [leased] = _list_leased_locks(storage)  # a lease written just now: held
    assert (leased.held, leased.command, leased.pid) == (True, None, 4321)
    assert (leased.engine, leased.kind, leased.series) == ("postgresql", "logical", "app")
