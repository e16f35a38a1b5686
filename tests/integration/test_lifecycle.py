"""pin / forget / rejected runs over real catalogs on disk (no servers needed):
the refusals, the id rules, the format version that protects a pin from an
older seawall, and prune dropping rejected runs after the grace."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seawall.app.prune import execute, plan
from seawall.catalog.models import PINNED_FORMAT_VERSION, Manifest, Pin
from seawall.catalog.rejected import list_rejected, rejected_prefix
from seawall.catalog.runs import record_failure
from seawall.catalog.store import CatalogError, manifest_key, parse_manifest
from seawall.context import Context
from seawall.errors import ConfigError, NotFoundError, RefusedError, SourceUnavailableError
from seawall.lifecycle import forget
from seawall.lifecycle.pin import parse_until, pin_backup, unpin_backup
from seawall.lifecycle.select import Selector, resolve_one
from seawall.postgres.logical.server import DatabaseMissingError
from seawall.settings import Settings
from tests.integration.exporter.builders import T0, write_backup


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(Settings(backup_dir=tmp_path / "repo", prune_after_backup=False))


def test_pin_rules_and_the_format_version_an_older_seawall_refuses(ctx: Context) -> None:
    root = ctx.settings.backup_dir
    good = write_backup(root, "postgresql", "logical", "app", finished=T0)
    failed = write_backup(root, "postgresql", "logical", "app", finished=T0, status="failed")
    now = datetime.now(UTC)
    with pytest.raises(RefusedError, match="is failed"):
        pin_backup(ctx, failed)
    with pytest.raises(RefusedError, match="in the past"):
        pin_backup(ctx, good, until=now - timedelta(days=1))
    pinned = pin_backup(ctx, good, note="legal\nhold", until=parse_until("2999-12-31"))
    assert pinned.pin is not None and pinned.pin.note == "legal hold"  # one line
    assert pinned.pin.until == datetime(3000, 1, 1, tzinfo=UTC)  # through that whole day
    raw = (root / manifest_key(good)).read_bytes()
    assert json.loads(raw)["format_version"] == 2 == PINNED_FORMAT_VERSION
    # what a seawall from before pins does with it: refuses to read it (so it
    # can neither prune nor restore it), instead of pruning it
    import seawall.catalog.store as store

    old = store.FORMAT_VERSION
    store.FORMAT_VERSION = 1
    try:
        with pytest.raises(CatalogError, match="newer than this seawall"):
            parse_manifest(raw, "m")
    finally:
        store.FORMAT_VERSION = old
    unpin_backup(ctx, good)
    assert json.loads((root / manifest_key(good)).read_bytes())["format_version"] == 1
    assert parse_manifest((root / manifest_key(good)).read_bytes(), "m").pin is None
    with pytest.raises(ConfigError, match="not a date"):
        parse_until("next tuesday")
    assert parse_until("2030-01-01T12:00:00") == datetime(2030, 1, 1, 12, tzinfo=UTC)


def test_ids_and_latest_are_resolved_without_guessing(ctx: Context) -> None:
    root = ctx.settings.backup_dir
    a = write_backup(root, "postgresql", "logical", "main", finished=T0)
    b = write_backup(root, "postgresql", "base", "main", finished=T0 + timedelta(hours=1))
    assert resolve_one(ctx, a.id, Selector()).id == a.id
    with pytest.raises(ConfigError, match="needs the series"):
        resolve_one(ctx, "latest", Selector())
    with pytest.raises(ConfigError, match="ambiguous"):
        resolve_one(ctx, "latest", Selector(series="main"))
    assert resolve_one(ctx, "latest", Selector(series="main", kind="base")).id == b.id
    with pytest.raises(NotFoundError):
        resolve_one(ctx, a.id, Selector(engine="qdrant"))


def test_forget_plan_is_what_it_deletes_and_protects_the_newest(ctx: Context) -> None:
    root = ctx.settings.backup_dir
    old = [
        write_backup(root, "postgresql", "logical", "app", finished=T0 - timedelta(days=d))
        for d in (3, 2)
    ]
    live_newest = write_backup(
        root, "postgresql", "logical", "app", finished=datetime.now(UTC) - timedelta(hours=1)
    )
    the_plan = forget.plan(ctx, old[0].id, Selector())
    assert [m.id for m in the_plan.backups] == [old[0].id] and forget.refusal(the_plan) is None
    forget.execute_plan(ctx, the_plan)
    left = {m.id for m in ctx.catalog.scan().manifests}
    assert left == {old[1].id, live_newest.id}
    whole = forget.plan(ctx, None, Selector(series="app"))
    assert whole.protected == [ctx.catalog.find(live_newest.id, "postgresql")]
    with pytest.raises(RefusedError, match="--force"):
        forget.execute_plan(ctx, whole)
    assert {m.id for m in ctx.catalog.scan().manifests} == left
    # a retired series (nothing ran within the grace) goes without --force
    retired = write_backup(root, "postgresql", "logical", "retired", finished=T0)
    gone = forget.plan(ctx, None, Selector(series="retired"))
    assert forget.refusal(gone) is None and [m.id for m in gone.backups] == [retired.id]
    forget.execute_plan(ctx, gone)
    assert not (root / "postgresql/logical/retired").exists()
    # a pinned backup of any age needs --force too
    pin_backup(ctx, ctx.catalog.find(old[1].id, "postgresql"))
    assert forget.refusal(forget.plan(ctx, old[1].id, Selector())) is not None
    with pytest.raises(RefusedError, match="never forgets the whole catalog"):
        forget.plan(ctx, None, Selector())


def _attempt(ctx: Context, series: str, exc: Exception, started: datetime) -> Manifest:
    m = Manifest(
        id=f"{started:%Y%m%dT%H%M%SZ}-abcd",
        engine="postgresql",
        kind="logical",
        series=series,
        target=f"127.0.0.1:5432/{series}",
        status="running",
        started_at=started,
    )
    record_failure(ctx.catalog, m, exc)
    return m


def _age(ctx: Context, m: Manifest, when: datetime) -> None:
    """Back-date a rejected run (as if it had been recorded at ``when``)."""
    key = f"{rejected_prefix(m)}/manifest.json"
    m = parse_manifest(ctx.storage.read_bytes(key), key)
    m.finished_at = when
    ctx.storage.write_bytes(key, m.to_json())


def test_rejected_runs_only_for_never_backed_up_targets_and_pruned_after_grace(
    ctx: Context,
) -> None:
    root = ctx.settings.backup_dir
    missing = DatabaseMissingError('database "nosuch" does not exist')
    old = _attempt(ctx, "nosuch", missing, datetime.now(UTC) - timedelta(days=8))
    new = _attempt(ctx, "nosuch", missing, datetime.now(UTC) - timedelta(hours=1))
    _age(ctx, old, datetime.now(UTC) - timedelta(days=8))
    assert not (root / "postgresql/logical/nosuch").exists()
    assert [r.manifest.id for r in list_rejected(ctx.storage)] == [new.id, old.id]
    # the server being down is not "the target does not exist": the series records it
    _attempt(ctx, "app", SourceUnavailableError("down"), datetime.now(UTC))
    assert [m.status for m in ctx.catalog.scan("postgresql", "logical", "app").manifests] == [
        "failed"
    ]
    # a database that was backed up and then vanished fails its own series
    write_backup(root, "postgresql", "logical", "dropped", finished=T0)
    _attempt(ctx, "dropped", missing, datetime.now(UTC))
    assert len(ctx.catalog.scan("postgresql", "logical", "dropped").manifests) == 2

    the_plan = plan(ctx)
    rejected = {a.name: a.action for a in the_plan.actions if a.what == "rejected"}
    assert rejected == {old.id: "drop", new.id: "keep"}
    execute(ctx, the_plan)
    assert [r.manifest.id for r in list_rejected(ctx.storage)] == [new.id]
    assert not (root / rejected_prefix(old)).exists()
    assert Pin(at=T0).active(T0)


def test_a_pin_written_after_prune_planned_wins(ctx: Context) -> None:
    """prune plans without the series lock and takes it only to delete; a pin
    written in between (pin holds the lock while it rewrites) must win."""
    root = ctx.settings.backup_dir
    ctx = Context(
        ctx.settings.model_copy(
            update={"retention_days": 1, "retention_months": 0, "retention_weeks": 0}
        )
    )
    old = write_backup(root, "postgresql", "logical", "app", finished=T0 - timedelta(days=400))
    write_backup(root, "postgresql", "logical", "app", finished=T0)
    the_plan = plan(ctx)
    assert [a.name for a in the_plan.drops()] == [old.id]
    pin_backup(ctx, old, note="just in time")
    result = execute(ctx, the_plan)
    assert result.deleted == 0 and "pinned after the plan" in result.skipped[0]
    assert (root / manifest_key(old)).exists()
    # forget --force of a backup pinned when planned still deletes it
    doomed = forget.plan(ctx, old.id, Selector())
    assert forget.refusal(doomed) is not None
    assert forget.execute_plan(ctx, doomed, force=True).deleted == 1
    assert not (root / manifest_key(old)).exists()


def test_pin_waits_for_a_running_backup_of_its_series_then_exits_6(ctx: Context) -> None:
    """A pin rewrites the manifest under the series lock: while another process
    (here: this test) holds it, `seawall pin` waits LOCK_TIMEOUT and exits 6
    with the manifest untouched."""
    import os

    from seawall.catalog.locks import series_lock
    from tests.conftest import run_seawall

    root = ctx.settings.backup_dir
    m = write_backup(root, "postgresql", "logical", "app", finished=T0)
    before = (root / manifest_key(m)).read_bytes()
    env = {"PATH": os.environ["PATH"], "BACKUP_DIR": str(root), "LOCK_TIMEOUT": "1"}
    with series_lock(root, "postgresql", "logical", "app", timeout=1, command="test backup"):
        res = run_seawall(["pin", m.id, "--note", "x"], env)
    assert res.returncode == 6, res.stderr
    assert "test backup" in res.stderr
    assert (root / manifest_key(m)).read_bytes() == before
    res = run_seawall(["pin", m.id, "--note", "x", "--json"], env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["pin"]["note"] == "x"
