"""Untrusted names never escape their directory; series locks exclude each other."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from seawall.catalog.locks import list_locks, series_lock
from seawall.catalog.naming import decode_segment, encode_segment
from seawall.errors import LockedError


@given(st.text(max_size=80))
def test_encode_segment_is_safe_and_reversible(name: str) -> None:
    seg = encode_segment(name)
    assert "/" not in seg and "\x00" not in seg and seg not in ("", ".", "..")
    assert not seg.startswith(".")
    assert decode_segment(seg) == name


def _hold(backup_dir: str, seconds: float) -> None:
    with series_lock(Path(backup_dir), "postgresql", "logical", "app", timeout=1, command="holder"):
        time.sleep(seconds)


def test_second_run_fails_with_lock_error(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("fork").Process(target=_hold, args=(str(tmp_path), 3))
    proc.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(i.held for i in list_locks(tmp_path)):
            time.sleep(0.05)
        info = [i for i in list_locks(tmp_path) if i.held]
        assert info and info[0].command == "holder" and info[0].series == "app"
        started = time.monotonic()
        with (
            pytest.raises(LockedError, match="another seawall run") as exc,
            series_lock(tmp_path, "postgresql", "logical", "app", timeout=0.5, command="second"),
        ):
            pass
        assert exc.value.exit_code == 6
        assert time.monotonic() - started >= 0.5
        # Another series is not blocked.
        with series_lock(tmp_path, "postgresql", "logical", "other", timeout=0.5, command="x"):
            pass
    finally:
        proc.join()
    # The holder is gone: the lock is free again (released by the kernel).
    with series_lock(tmp_path, "postgresql", "logical", "app", timeout=0.5, command="third"):
        pass
