"""Nothing is acknowledged before it is durable (design invariants 1 and 6).

A power cut keeps only what was fsynced: the file's content must be synced
*before* its final name can appear (otherwise the name may survive pointing
at zeros), and the directory holding the final name must be synced *after*
the name appears and before the function returns (otherwise the name may
vanish after PostgreSQL was told the segment is archived).

The tests record, in process, every ``os.fsync``/``os.fdatasync`` (which
inode, file or directory, and whether the final name existed at that
moment) and every ``rename``/``replace``/``link``. The assertions are about
behaviour, not about helper names or one way of claiming the name (rename,
link, ...), so the push paths can be restructured freely:

* some sync of the inode that ends up under the final name completed while
  that name did not exist yet;
* some sync of the final name's directory started while the name existed;
* for a duplicate (the file was already archived): the existing file is
  synced, then its directory, before success is returned.

Each test was checked against the bug it guards (issue 18): removing the
``fdatasync`` in fastpush, moving the directory fsync before the rename, or
dropping either fsync on the duplicate paths makes it fail.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seawall.postgres.wal import fastpush, push as general
from seawall.postgres.wal.envconfig import load_wal_config
from seawall.storage.local import LocalStorage
from tests.integration.wal.test_wal_lean_push import (
    archive_dir,
    env_for,
    make_segment,
    prepare_archive,
)

FileId = tuple[int, int]


@dataclass(frozen=True)
class Sync:
    call: str  # "fsync" | "fdatasync"
    inode: FileId
    is_dir: bool
    #: which watched paths existed: for files after the sync returned, for
    #: directories before it started
    existed: frozenset[Path]


def _inode(path: Path) -> FileId:
    st = path.stat()
    return st.st_dev, st.st_ino


class Recorder:
    """Wraps the os calls that make a write durable; see the module docstring."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *watched: Path) -> None:
        self.watched = watched
        self.events: list[Sync | tuple[str, str, str]] = []
        for call in ("fsync", "fdatasync"):
            monkeypatch.setattr(os, call, self._sync(call, getattr(os, call)))
        for call in ("rename", "replace", "link"):
            monkeypatch.setattr(os, call, self._namer(call, getattr(os, call)))

    def _existing(self) -> frozenset[Path]:
        return frozenset(p for p in self.watched if os.path.lexists(p))

    def _sync(self, call: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def wrapper(fd: int) -> None:
            st = os.fstat(fd)
            is_dir = stat.S_ISDIR(st.st_mode)
            before = self._existing()
            real(fd)
            existed = before if is_dir else self._existing()
            self.events.append(Sync(call, (st.st_dev, st.st_ino), is_dir, existed))

        return wrapper

    def _namer(self, call: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(src: Any, dst: Any, *args: Any, **kw: Any) -> Any:
            result = real(src, dst, *args, **kw)
            self.events.append((call, os.fspath(src), os.fspath(dst)))
            return result

        return wrapper

    def syncs(self) -> list[tuple[int, Sync]]:
        return [(i, e) for i, e in enumerate(self.events) if isinstance(e, Sync)]

    def assert_new_file_durable(self, final: Path) -> None:
        """Content synced before the final name appeared; its directory after."""
        assert final in self.watched and final.is_file(), f"no final file: {final}"
        inode, dir_inode = _inode(final), _inode(final.parent)
        content = [e for _, e in self.syncs() if not e.is_dir and e.inode == inode]
        assert any(final not in e.existed for e in content), (
            f"{final.name}: its content was not fsynced before the name appeared: {self.events}"
        )
        directory = [e for _, e in self.syncs() if e.is_dir and e.inode == dir_inode]
        assert any(final in e.existed for e in directory), (
            f"{final.parent}: not fsynced after {final.name} appeared: {self.events}"
        )

    def assert_existing_file_resynced(self, final: Path) -> None:
        """The duplicate path: the existing file synced, then its directory."""
        assert final.is_file()
        inode, dir_inode = _inode(final), _inode(final.parent)
        files = [i for i, e in self.syncs() if not e.is_dir and e.inode == inode]
        assert files, f"{final.name} was not fsynced again: {self.events}"
        dirs = [i for i, e in self.syncs() if e.is_dir and e.inode == dir_inode]
        assert any(i > files[0] for i in dirs), (
            f"{final.parent} was not fsynced after the file: {self.events}"
        )


def _final_wal(backup: Path, seg: Path, suffix: str = ".zst.age") -> Path:
    sha = hashlib.sha256(seg.read_bytes()).hexdigest()
    return archive_dir(backup) / seg.name[:16] / f"{seg.name}-{sha[:40]}{suffix}"


def test_lean_push_syncs_content_before_the_name_and_the_directory_after(
    tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = tmp_path / "backup"
    prepare_archive(backup)
    seg = make_segment(tmp_path)
    final = _final_wal(backup, seg)
    rec = Recorder(monkeypatch, final)
    # in process: the lean path itself must commit (no Fallback to the general one)
    assert fastpush.push(str(seg), env_for(backup, age_keys[1])).name == final.name
    rec.assert_new_file_durable(final)


def test_lean_push_duplicate_resyncs_file_then_directory(
    tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = tmp_path / "backup"
    prepare_archive(backup)
    seg = make_segment(tmp_path)
    env = env_for(backup, age_keys[1])
    final = _final_wal(backup, seg)
    assert fastpush.push(str(seg), env).name == final.name
    rec = Recorder(monkeypatch, final)
    assert fastpush.push(str(seg), env).name == final.name
    rec.assert_existing_file_resynced(final)


@pytest.mark.parametrize("mode", ["one-shot", "streaming"])
def test_general_push_syncs_content_before_the_name_and_the_directory_after(
    mode: str, tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if mode == "streaming":  # segments above ONE_SHOT_MAX go through store_stream
        monkeypatch.setattr(general, "ONE_SHOT_MAX", 0)
    backup = tmp_path / "backup"
    seg = make_segment(tmp_path)
    cfg = load_wal_config(env_for(backup, age_keys[1]))
    final, info = _final_wal(backup, seg), archive_dir(backup) / "archive.json"
    rec = Recorder(monkeypatch, final, info)
    # the first push: archive.json is written under the same rule
    result = general.push_wal(cfg, seg)
    assert not result.duplicate and result.key.endswith(final.name)
    rec.assert_new_file_durable(final)
    rec.assert_new_file_durable(info)


def test_general_push_duplicate_resyncs_file_then_directory(
    tmp_path: Path, age_keys: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = tmp_path / "backup"
    seg = make_segment(tmp_path)
    cfg = load_wal_config(env_for(backup, age_keys[1]))
    general.push_wal(cfg, seg)
    final = _final_wal(backup, seg)
    rec = Recorder(monkeypatch, final)
    assert general.push_wal(cfg, seg).duplicate
    rec.assert_existing_file_resynced(final)


def test_open_atomic_write_new_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    key = "postgresql/logical/app/20261124T020000Z-1a2b/dump.pgdump.zst"
    rec = Recorder(monkeypatch, storage.path(key))
    with storage.open_atomic_write(key) as fh:
        fh.write(b"payload" * 1000)
    rec.assert_new_file_durable(storage.path(key))
    assert storage.read_bytes(key) == b"payload" * 1000


def test_open_atomic_write_over_an_existing_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest rewritten (verification result): the name exists all along,
    so the order is taken from the call that swaps the new file in."""
    storage = LocalStorage(tmp_path)
    key = "postgresql/logical/app/20261124T020000Z-1a2b/manifest.json"
    storage.write_bytes(key, b"old")
    rec = Recorder(monkeypatch, storage.path(key))
    storage.write_bytes(key, b"new manifest")
    final = storage.path(key)
    inode, dir_inode = _inode(final), _inode(final.parent)
    claims = [i for i, e in enumerate(rec.events) if isinstance(e, tuple) and e[2] == str(final)]
    assert claims, f"the new file was not swapped in by rename/replace: {rec.events}"
    assert any(not e.is_dir and e.inode == inode for i, e in rec.syncs() if i < claims[-1])
    assert any(e.is_dir and e.inode == dir_inode for i, e in rec.syncs() if i > claims[-1])
    assert storage.read_bytes(key) == b"new manifest"
