"""The contract every storage backend must honour (local now, S3 later)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall.errors import NotFoundError, StorageError
from seawall.storage import LocalStorage, Storage


@pytest.fixture(params=["local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    yield LocalStorage(tmp_path / "vol")


def test_atomic_write_appears_only_when_complete(storage: Storage) -> None:
    with storage.open_atomic_write("a/b/obj.bin") as fh:
        fh.write(b"x" * 1000)
        assert not storage.exists("a/b/obj.bin")
        assert [o.key for o in storage.list("a")] == []
        assert len(list(storage.list_partials("a"))) == 1
    assert storage.read_bytes("a/b/obj.bin") == b"x" * 1000
    assert storage.stat("a/b/obj.bin").size == 1000
    assert list(storage.list_partials("")) == []


def test_failed_write_leaves_nothing(storage: Storage) -> None:
    with pytest.raises(RuntimeError), storage.open_atomic_write("a/obj") as fh:
        fh.write(b"partial")
        raise RuntimeError("producer died")
    assert not storage.exists("a/obj")
    assert list(storage.list("")) == [] and list(storage.list_partials("")) == []


def test_replace_is_atomic_and_delete_idempotent(storage: Storage) -> None:
    storage.write_bytes("m.json", b"one")
    storage.write_bytes("m.json", b"two")
    assert storage.read_bytes("m.json") == b"two"
    storage.delete("m.json")
    storage.delete("m.json")
    assert not storage.exists("m.json")
    with pytest.raises(NotFoundError):
        storage.read_bytes("m.json")
    with pytest.raises(NotFoundError):
        storage.stat("m.json")


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../b", "a//b", "a/./b", "", "a\x00b"])
def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError):
        storage.write_bytes(key, b"x")


def test_list_is_recursive_and_sorted(storage: Storage) -> None:
    for key in ("p/2/b", "p/1/a", "p/1/c", "q/z"):
        storage.write_bytes(key, b"1")
    assert [o.key for o in storage.list("p")] == ["p/1/a", "p/1/c", "p/2/b"]
    assert [o.key for o in storage.list("")] == ["p/1/a", "p/1/c", "p/2/b", "q/z"]
    assert list(storage.list("missing")) == []


def test_disk_full_is_a_storage_error(tmp_path: Path) -> None:
    """ENOSPC for real: /dev/full fails every write with ENOSPC."""
    import errno

    from seawall.storage.local import storage_error

    try:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x")
            fh.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
        err = storage_error(exc, "obj")
        assert err.exit_code == 7 and "full" in str(err)


def test_archived_wal_partial_segments_are_not_temporaries(storage: Storage) -> None:
    """PostgreSQL's own ``.partial`` WAL files (archived at promotion) are real objects."""
    name = "w/000000010000000000000007.partial-" + "a" * 40 + ".zst.age"
    storage.write_bytes(name, b"wal")
    assert [o.key for o in storage.list("w")] == [name]
    assert list(storage.list_partials("w")) == []
