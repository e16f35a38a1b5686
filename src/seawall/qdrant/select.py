"""Resolve what the user named: a backup id, ``latest``, or a PATH.

PATH is a backup directory (or its ``manifest.json``) anywhere on disk, e.g.
a copy fetched from off-site storage. ``latest`` needs a collection when
several collections have backups; ids are looked up across the Qdrant kinds
(collection, shard and full-storage snapshots).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seawall.catalog.models import MANIFEST_NAME, Manifest
from seawall.catalog.store import artifact_key, parse_manifest
from seawall.context import Context
from seawall.errors import ConfigError, NotFoundError
from seawall.storage.base import Storage
from seawall.storage.factory import open_storage

ENGINE = "qdrant"


@dataclass
class BackupSource:
    """Where the bytes of one backup are and the manifest describing them."""

    storage: Storage
    manifest: Manifest
    in_catalog: bool

    def key(self, name: str) -> str:
        return artifact_key(self.manifest, name) if self.in_catalog else name

    @property
    def label(self) -> str:
        return f"backup {self.manifest.id} of {self.manifest.series!r}"


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or ref.startswith(".") or Path(ref).exists()


def latest_per_series(ctx: Context, collection: str | None = None) -> list[Manifest]:
    """The newest successful backup of each Qdrant series (optionally one collection)."""
    newest: dict[tuple[str, str], Manifest] = {}
    for m in ctx.catalog.scan(ENGINE).manifests:  # newest first
        if not m.ok or (collection is not None and m.series != collection):
            continue
        newest.setdefault((m.kind, m.series), m)
    return sorted(newest.values(), key=lambda m: (m.series, m.kind))


def resolve(ctx: Context, ref: str, collection: str | None = None) -> BackupSource:
    """BACKUP id | latest | PATH → a BackupSource (NotFoundError if absent)."""
    if ref != "latest" and _looks_like_path(ref):
        return from_path(Path(ref))
    ctx.require_repository()
    if ref == "latest":
        candidates = latest_per_series(ctx, collection)
        candidates = [m for m in candidates if m.kind != "full-storage"] or candidates
        if not candidates:
            what = f"collection {collection!r}" if collection else "any Qdrant collection"
            raise NotFoundError(
                f"no successful backup of {what} in {ctx.storage.describe()}; "
                "run `seawall qdrant backup` first or check BACKUP_DIR"
            )
        series = {m.series for m in candidates}
        if len(series) > 1:
            raise ConfigError(
                f"several collections have backups ({', '.join(sorted(series))}); "
                "choose one with --collection"
            )
        newest = max(candidates, key=lambda m: (m.time, m.id))
        return BackupSource(ctx.storage, newest, in_catalog=True)
    scan = ctx.catalog.scan(ENGINE)
    for m in scan.manifests:
        if m.id == ref and (collection is None or m.series == collection):
            return BackupSource(ctx.storage, m, in_catalog=True)
    corrupt = scan.corrupt_error(ref)
    if corrupt is not None:
        raise corrupt
    raise NotFoundError(
        f"Qdrant backup {ref!r} not found in {ctx.storage.describe()}; "
        "`seawall qdrant list` shows the ids"
    )


def from_path(path: Path) -> BackupSource:
    path = path.expanduser()
    if path.is_file() and path.name == MANIFEST_NAME:
        path = path.parent
    manifest_file = path / MANIFEST_NAME
    if not manifest_file.is_file():
        raise NotFoundError(
            f"{path}: not a seawall backup directory (no {MANIFEST_NAME}); "
            "give a backup id, `latest`, or a directory holding manifest.json"
        )
    manifest = parse_manifest(manifest_file.read_bytes(), str(manifest_file))
    if manifest.engine != ENGINE:
        raise ConfigError(
            f"{path} is a {manifest.engine} backup, not Qdrant; use `seawall postgres ...`"
        )
    storage = open_storage(path.absolute(), what="the backup path")
    return BackupSource(storage, manifest, in_catalog=False)
