"""Resolve what the user named: a backup id, ``latest``, or a PATH.

PATH may be a backup directory (or its manifest.json) anywhere on disk, e.g.
a copy fetched from off-site storage, or a single foreign file: a legacy
``aidb-full-*.sql.gz`` dump or a hand-made ``pg_dump | zstd | age`` archive.
A foreign file has no manifest, so its decode chain is detected from its
bytes and there is no checksum to compare against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seawall.catalog.models import MANIFEST_NAME, Manifest
from seawall.catalog.store import artifact_key, manifest_key, parse_manifest
from seawall.context import Context
from seawall.errors import ConfigError, NotFoundError
from seawall.storage.base import Storage
from seawall.storage.factory import open_storage

ENGINE = "postgresql"
KIND = "logical"


@dataclass
class BackupSource:
    """Where the bytes of one backup are and how they are described."""

    storage: Storage
    label: str  # for messages
    manifest: Manifest | None = None
    foreign_key: str | None = None  # a file without manifest
    in_catalog: bool = False

    def key(self, name: str) -> str:
        if self.manifest is not None and self.in_catalog:
            return artifact_key(self.manifest, name)
        return name

    def manifest_location(self) -> str | None:
        if self.manifest is None:
            return None
        return manifest_key(self.manifest) if self.in_catalog else MANIFEST_NAME


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or ref.startswith(".") or Path(ref).exists()


def resolve(ctx: Context, ref: str, database: str | None = None) -> BackupSource:
    """BACKUP id | latest | PATH → a BackupSource (NotFoundError if absent)."""
    if ref != "latest" and _looks_like_path(ref):
        return _from_path(Path(ref))
    ctx.require_repository()
    catalog = ctx.catalog
    if ref == "latest":
        series = database
        if series is None:
            names = sorted({m.series for m in catalog.scan(ENGINE, KIND).manifests if m.ok})
            if len(names) > 1:
                raise ConfigError(
                    f"several databases have backups ({', '.join(names)}); "
                    "choose one with --database"
                )
            series = names[0] if names else None
        if series is None:
            raise NotFoundError(
                f"no successful logical backup in {ctx.storage.describe()}; "
                "run `seawall postgres backup` first or check BACKUP_DIR"
            )
        m = catalog.find("latest", ENGINE, KIND, series)
    else:
        m = catalog.find(ref, ENGINE, KIND, database)
    return BackupSource(ctx.storage, f"backup {m.id} of {m.series}", m, in_catalog=True)


def _from_path(path: Path) -> BackupSource:
    path = path.expanduser()
    if not path.exists():
        raise NotFoundError(f"{path}: no such file or directory; check the path")
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise NotFoundError(
                f"{path} is a directory without {MANIFEST_NAME}; give a backup directory "
                "or a dump file"
            )
        path = path / MANIFEST_NAME
    storage = open_storage(path.parent.absolute(), what="the backup path")
    if path.name == MANIFEST_NAME:
        m = parse_manifest(path.read_bytes(), str(path))
        return BackupSource(storage, f"backup {m.id} of {m.series} ({path.parent})", m)
    return BackupSource(storage, str(path), None, foreign_key=path.name)
