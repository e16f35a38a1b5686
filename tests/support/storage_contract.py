"""The contract every storage backend must honour, written once.

A backend joins by subclassing :class:`StorageContract` and providing a
``storage`` fixture that yields an empty store: the one parametrised module
is tests/integration/storage/test_storage_contract.py — the next backend adds
itself to its ``BACKENDS`` list. The bodies written here are above S3's 5 MiB minimum part where it
matters, so a multipart backend is exercised as a multipart backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time

import pytest

from seawall.errors import NotFoundError, StorageError
from seawall.storage import Storage
from seawall.storage.base import is_partial_name

MIB = 1024 * 1024
#: above S3's minimum part size (5 MiB): a multipart writer has an upload open
BIG = 6 * MIB


class StorageContract:
    """Inherited by one test class per backend; each needs a ``storage`` fixture."""

    #: more than one listing page (S3 fixtures list 100 keys per page)
    many_objects = 250

    def test_atomic_write_appears_only_when_complete(self, storage: Storage) -> None:
        body = os.urandom(BIG)
        with storage.open_atomic_write("a/b/obj.bin") as fh:
            for i in range(0, len(body), MIB):
                fh.write(body[i : i + MIB])
            assert not storage.exists("a/b/obj.bin")
            assert [o.key for o in storage.list("a")] == []
            partials = list(storage.list_partials("a"))
            assert len(partials) == 1 and is_partial_name(partials[0].key)
            assert partials[0].key.startswith("a/b/obj.bin")
        assert storage.read_bytes("a/b/obj.bin") == body
        assert storage.stat("a/b/obj.bin").size == len(body)
        assert abs(storage.stat("a/b/obj.bin").mtime - time.time()) < 600
        assert list(storage.list_partials("")) == []

    def test_small_write_appears_only_when_complete(self, storage: Storage) -> None:
        with storage.open_atomic_write("a/small") as fh:
            fh.write(b"x" * 1000)
            assert not storage.exists("a/small")
            assert [o.key for o in storage.list("a")] == []
        assert storage.read_bytes("a/small") == b"x" * 1000
        assert list(storage.list_partials("")) == []

    @pytest.mark.parametrize("size", [7, BIG])
    def test_failed_write_leaves_nothing(self, storage: Storage, size: int) -> None:
        with pytest.raises(RuntimeError), storage.open_atomic_write("a/obj") as fh:
            fh.write(b"p" * size)
            raise RuntimeError("producer died")
        assert not storage.exists("a/obj")
        assert list(storage.list("")) == [] and list(storage.list_partials("")) == []

    def test_failed_replace_keeps_the_old_object(self, storage: Storage) -> None:
        storage.write_bytes("a/m.json", b"old")
        with pytest.raises(RuntimeError), storage.open_atomic_write("a/m.json") as fh:
            fh.write(b"n" * BIG)
            raise RuntimeError("producer died")
        assert storage.read_bytes("a/m.json") == b"old"

    def test_abandoned_temporary_is_deleted_by_its_key(self, storage: Storage) -> None:
        """What prune and a failed run's cleanup do: delete(partial.key)."""
        cm = storage.open_atomic_write("s/x/artifact")
        fh = cm.__enter__()
        fh.write(b"z" * BIG)
        (partial,) = storage.list_partials("s")
        assert [(i.key, flag) for i, flag in storage.walk("s")] == [(partial.key, True)]
        storage.delete(partial.key)
        storage.delete(partial.key)  # idempotent
        assert list(storage.list_partials("s")) == []
        with contextlib.suppress(BaseException):
            cm.__exit__(RuntimeError, RuntimeError("crashed"), None)
        assert not storage.exists("s/x/artifact")

    def test_replace_is_atomic_and_delete_idempotent(self, storage: Storage) -> None:
        storage.write_bytes("m.json", b"one")
        storage.write_bytes("m.json", b"two")
        assert storage.read_bytes("m.json") == b"two"
        storage.delete("m.json")
        storage.delete("m.json")
        assert not storage.exists("m.json")
        with pytest.raises(NotFoundError):
            storage.read_bytes("m.json")
        with pytest.raises(NotFoundError):
            storage.open_read("m.json")
        with pytest.raises(NotFoundError):
            storage.stat("m.json")

    @pytest.mark.parametrize(
        "key", ["../x", "/etc/passwd", "a/../../b", "a//b", "a/./b", "", "a\x00b"]
    )
    def test_unsafe_keys_are_refused(self, storage: Storage, key: str) -> None:
        with pytest.raises(StorageError):
            storage.write_bytes(key, b"x")

    def test_list_is_recursive_and_sorted(self, storage: Storage) -> None:
        for key in ("p/2/b", "p/1/a", "p/1/c", "q/z", "pq/sibling"):
            storage.write_bytes(key, b"1")
        assert [o.key for o in storage.list("p")] == ["p/1/a", "p/1/c", "p/2/b"]
        assert [o.key for o in storage.list("p/1")] == ["p/1/a", "p/1/c"]
        assert [o.key for o in storage.list("")] == [
            "p/1/a", "p/1/c", "p/2/b", "pq/sibling", "q/z",
        ]  # fmt: skip
        assert [o.size for o in storage.list("q")] == [1]
        assert list(storage.list("missing")) == []

    def test_walk_skips_excluded_subtrees(self, storage: Storage) -> None:
        for key in ("e/wal/1", "e/wal/2", "e/logical/s/1/manifest.json", "e/x", "f/wal/3"):
            storage.write_bytes(key, b"1")
        got = sorted(i.key for i, partial in storage.walk("", exclude=("e/wal",)) if not partial)
        assert got == ["e/logical/s/1/manifest.json", "e/x", "f/wal/3"]
        got = sorted(i.key for i, _ in storage.walk("e", exclude=("e/wal",)))
        assert got == ["e/logical/s/1/manifest.json", "e/x"]

    def test_many_objects_are_all_listed(self, storage: Storage) -> None:
        """More keys than one listing page: pagination is followed."""
        for i in range(self.many_objects):
            storage.write_bytes(f"n/{i:05d}", b"")
        keys = [o.key for o in storage.list("n")]
        assert keys == [f"n/{i:05d}" for i in range(self.many_objects)]

    def test_large_object_streams_back_intact(self, storage: Storage) -> None:
        body = os.urandom(11 * MIB + 123)  # three S3 parts at 5 MiB, the last short
        with storage.open_atomic_write("big/obj") as fh:
            for i in range(0, len(body), 256 * 1024):
                fh.write(body[i : i + 256 * 1024])
        digest = hashlib.sha256()
        with storage.open_read("big/obj") as fh:
            while chunk := fh.read(MIB):
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(body).hexdigest()
        assert storage.stat("big/obj").size == len(body)

    def test_archived_wal_partial_segments_are_not_temporaries(self, storage: Storage) -> None:
        """PostgreSQL's own ``.partial`` WAL files (archived at promotion) are real objects."""
        name = "w/000000010000000000000007.partial-" + "a" * 40 + ".zst.age"
        storage.write_bytes(name, b"wal")
        assert [o.key for o in storage.list("w")] == [name]
        assert list(storage.list_partials("w")) == []

    def test_describe_names_the_place(self, storage: Storage) -> None:
        assert storage.describe()
