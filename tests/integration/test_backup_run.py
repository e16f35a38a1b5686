"""The backup-run lifecycle (catalog/run.py) on a real repository on disk.

Every engine goes through it, so its order is checked here once: the
artifacts of a failed run are removed and the failure recorded (also on
Ctrl-C), a run against a target that never existed is recorded as
rejected, the success manifest is written before the ``after`` hook runs
and that hook runs while the series lock is still held.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.catalog.locks import is_held, lock_path
from seawall.catalog.models import Artifact, Manifest, utcnow
from seawall.catalog.naming import new_backup_id
from seawall.catalog.rejected import TargetMissing, list_rejected
from seawall.catalog.run import backup_run, record_failed_run
from seawall.catalog.store import Catalog, artifact_key
from seawall.errors import BackupFailedError, NotFoundError, SeawallError
from seawall.storage.local import LocalStorage


def _manifest(series: str = "app") -> Manifest:
    return Manifest(
        id=new_backup_id(),
        engine="postgresql",
        kind="logical",
        series=series,
        target="test",
        status="running",
        started_at=utcnow(),
        seawall_version="test",
    )


def _store_artifact(catalog: Catalog, m: Manifest, name: str = "dump.bin") -> None:
    data = b"x" * 100
    catalog.storage.write_bytes(artifact_key(m, name), data)
    m.artifacts.append(
        Artifact(
            name=name,
            role="dump",
            stored_size=len(data),
            raw_size=len(data),
            sha256="0" * 64,
            compression="none",
        )
    )


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Catalog, Path]:
    root = tmp_path / "repo"
    root.mkdir(mode=0o700)
    return Catalog(LocalStorage(root)), root


def test_success_is_written_before_after_runs_inside_the_lock(repo: tuple[Catalog, Path]) -> None:
    catalog, root = repo
    seen: list[tuple[str, bool, str]] = []

    def after(m: Manifest) -> None:
        stored = catalog.scan("postgresql", "logical", "app").manifests
        held = is_held(lock_path(root, "postgresql", "logical", "app"))
        seen.append((stored[0].status, held, stored[0].id))

    m = _manifest()
    out = backup_run(
        catalog,
        root,
        m,
        lambda m: _store_artifact(catalog, m),
        timeout=1,
        command="t",
        after=after,
    )
    assert out is m and m.status == "success" and m.duration_seconds is not None
    assert seen == [("success", True, m.id)]
    assert not is_held(lock_path(root, "postgresql", "logical", "app"))


@pytest.mark.parametrize("exc", [SeawallError("boom"), KeyboardInterrupt()])
def test_a_failed_run_removes_its_artifacts_and_records_the_failure(
    repo: tuple[Catalog, Path], exc: BaseException
) -> None:
    catalog, root = repo
    called: list[Manifest] = []

    def work(m: Manifest) -> None:
        _store_artifact(catalog, m)
        raise exc

    m = _manifest()
    with pytest.raises(type(exc)):
        backup_run(catalog, root, m, work, timeout=1, command="t", after=called.append)
    assert called == []  # nothing after a failed backup
    [failed] = catalog.scan("postgresql", "logical", "app").manifests
    assert failed.status == "failed" and failed.artifacts == []
    assert failed.error == ("boom" if isinstance(exc, SeawallError) else "interrupted")
    assert not (root / artifact_key(m, "dump.bin")).exists()


def test_reraise_replaces_the_error_but_the_manifest_keeps_the_first(
    repo: tuple[Catalog, Path],
) -> None:
    catalog, root = repo

    def work(m: Manifest) -> None:
        raise ValueError("bad label")

    with pytest.raises(BackupFailedError, match="base backup failed: bad label"):
        backup_run(
            catalog,
            root,
            _manifest(),
            work,
            timeout=1,
            command="t",
            reraise=lambda e: BackupFailedError(f"base backup failed: {e}"),
        )
    [failed] = catalog.scan("postgresql", "logical", "app").manifests
    assert failed.error == "ValueError: bad label"


class _Missing(TargetMissing, NotFoundError):
    pass


def test_a_target_that_never_existed_is_a_rejected_run(repo: tuple[Catalog, Path]) -> None:
    catalog, root = repo

    def work(m: Manifest) -> None:
        raise _Missing("no such database")

    with pytest.raises(_Missing):
        backup_run(catalog, root, _manifest("nosuch"), work, timeout=1, command="t")
    assert catalog.scan("postgresql", "logical", "nosuch").manifests == []
    assert [r.manifest.series for r in list_rejected(catalog.storage)] == ["nosuch"]


def test_an_unreachable_run_is_recorded_unless_a_run_holds_the_series(
    repo: tuple[Catalog, Path],
) -> None:
    catalog, root = repo
    results: list[bool] = []

    def work(m: Manifest) -> None:
        # a run in progress: the unreachable record must not wait for it, nor write
        results.append(
            record_failed_run(catalog, root, _manifest(), SeawallError("down"), command="t")
        )

    backup_run(catalog, root, _manifest(), work, timeout=1, command="t")
    assert results == [False]
    assert record_failed_run(catalog, root, _manifest(), SeawallError("down"), command="t")
    statuses = sorted(m.status for m in catalog.scan("postgresql", "logical", "app").manifests)
    assert statuses == ["failed", "success"]
