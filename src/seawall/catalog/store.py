"""Atomic read/write of manifests and queries over the catalog.

Layout on the volume (self-describing; see docs/manual-restore.md)::

    <BACKUP_DIR>/<engine>/<kind>/<series>/<id>/manifest.json
    <BACKUP_DIR>/<engine>/<kind>/<series>/<id>/<artifact files>

e.g. ``postgresql/logical/app/20261124T020000Z-1a2b/dump.pgdump.zst.age``.

The manifest is written last and atomically. Anything without a readable
manifest is not a backup: listing, retention, restore and metrics ignore it.
Deleting goes the other way round: manifest first, then the artifacts, so a
half-deleted backup never looks restorable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from seawall.catalog.models import FORMAT_VERSION, MANIFEST_NAME, Manifest
from seawall.catalog.naming import decode_segment, encode_segment, is_backup_id
from seawall.errors import NotFoundError, SeawallError, StorageError
from seawall.log import get_logger
from seawall.storage.base import ObjectInfo, Storage
from seawall.walcore.layout import WAL_ROOT


class CatalogError(SeawallError):
    """A manifest is corrupt, foreign or from a newer seawall."""

    exit_code = 3


@dataclass
class Inventory:
    """One pass over the volume: manifests, manifest-less backup dirs, temporaries."""

    manifest_keys: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    partials: list[ObjectInfo] = field(default_factory=list)
    dir_files: dict[str, list[ObjectInfo]] = field(default_factory=dict)


@dataclass
class ScanResult:
    """Manifests found, and the problems met on the way (never fatal)."""

    manifests: list[Manifest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: backup id -> why its manifest could not be used (corrupt, unreadable)
    corrupt: dict[str, str] = field(default_factory=dict)

    def corrupt_error(self, backup_id: str) -> CatalogError | None:
        """The error to give for ``backup_id`` if its manifest exists but is unusable."""
        reason = self.corrupt.get(backup_id)
        if reason is None:
            return None
        return CatalogError(
            f"backup {backup_id}: its manifest is corrupt or unreadable ({reason}); it cannot be "
            "verified or restored: choose another backup, or restore its manifest from a copy"
        )


def backup_prefix(engine: str, kind: str, series: str, backup_id: str) -> str:
    return f"{engine}/{kind}/{encode_segment(series)}/{backup_id}"


def manifest_key(m: Manifest) -> str:
    return f"{backup_prefix(m.engine, m.kind, m.series, m.id)}/{MANIFEST_NAME}"


def artifact_key(m: Manifest, name: str) -> str:
    return f"{backup_prefix(m.engine, m.kind, m.series, m.id)}/{name}"


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Parse and check a manifest; CatalogError with the reason otherwise."""
    try:
        # Fast path (the exporter and prune parse thousands): pydantic's JSON parser.
        fast = Manifest.model_validate_json(data)
    except ValidationError:
        pass  # fall through for a precise message
    else:
        if fast.format_version <= FORMAT_VERSION:
            return fast
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{where}: not a seawall manifest (invalid JSON: {exc})") from exc
    if not isinstance(raw, dict) or "format_version" not in raw:
        raise CatalogError(f"{where}: not a seawall manifest (no format_version)")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CatalogError(
            f"{where}: manifest format {version!r} is newer than this seawall "
            f"understands ({FORMAT_VERSION}); upgrade seawall"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise CatalogError(f"{where}: invalid manifest ({loc}: {first.get('msg')})") from exc


class Catalog:
    """The set of manifests on a storage backend."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def write(self, manifest: Manifest) -> None:
        """Write (or replace) a manifest atomically."""
        self.storage.write_bytes(manifest_key(manifest), manifest.to_json())

    def load(self, key: str) -> Manifest:
        return parse_manifest(self.storage.read_bytes(key), key)

    def manifest_keys(
        self, engine: str | None = None, kind: str | None = None, series: str | None = None
    ) -> Iterator[str]:
        prefix = "/".join(
            p
            for p in (
                engine,
                kind if engine else None,
                encode_segment(series) if (engine and kind and series is not None) else None,
            )
            if p
        )
        for info in self.storage.list(prefix):
            parts = info.key.split("/")
            if len(parts) == 5 and parts[4] == MANIFEST_NAME and is_backup_id(parts[3]):
                if kind and parts[1] != kind:
                    continue
                # the segment, or an older encoding of the same name (a digested
                # long name only ever matches its own segment)
                if (
                    series is not None
                    and parts[2] != encode_segment(series)
                    and decode_segment(parts[2]) != series
                ):
                    continue
                yield info.key

    def inventory(self, engine: str | None = None) -> Inventory:
        """Walk the volume once (prune needs manifests, orphans and partials)."""
        inv = Inventory()
        with_manifest: set[str] = set()
        # The WAL archive (100,000s of files) has its own layout and listing.
        for info, partial in self.storage.walk(engine or "", exclude=(WAL_ROOT,)):
            parts = info.key.split("/")
            if partial:
                inv.partials.append(info)
                continue
            if len(parts) == 5 and is_backup_id(parts[3]):
                d = "/".join(parts[:4])
                inv.dir_files.setdefault(d, []).append(info)
                if parts[4] == MANIFEST_NAME:
                    with_manifest.add(d)
                    inv.manifest_keys.append(info.key)
        inv.orphans = sorted(set(inv.dir_files) - with_manifest)
        return inv

    def scan(
        self,
        engine: str | None = None,
        kind: str | None = None,
        series: str | None = None,
        *,
        keys: list[str] | None = None,
    ) -> ScanResult:
        """All readable manifests (filtered), newest first, plus errors met."""
        result = ScanResult()
        for key in keys if keys is not None else self.manifest_keys(engine, kind, series):
            try:
                result.manifests.append(self.load(key))
            except NotFoundError as exc:  # deleted (prune) between listing and reading
                result.errors.append(str(exc))
            except (CatalogError, StorageError) as exc:
                message = str(exc) if isinstance(exc, CatalogError) else f"{key}: {exc}"
                result.errors.append(message)
                parts = key.split("/")
                if len(parts) == 5:
                    result.corrupt[parts[3]] = message
        result.manifests.sort(key=lambda m: (m.time, m.id), reverse=True)
        return result

    def find(
        self,
        ref: str,
        engine: str,
        kind: str | None = None,
        series: str | None = None,
        *,
        successful: bool = True,
    ) -> Manifest:
        """Resolve ``latest`` or a backup id to a manifest."""
        scan = self.scan(engine, kind, series)
        manifests = scan.manifests
        if ref == "latest":
            candidates = [m for m in manifests if m.ok or not successful]
            newest_bad = max(scan.corrupt, default=None)  # ids sort by time
            bad = scan.corrupt_error(newest_bad) if newest_bad is not None else None
            if not candidates and bad is not None:
                raise bad
            if not candidates:
                what = f"{engine} {kind or ''} {series or ''}".split()
                raise NotFoundError(
                    f"no successful backup of {' '.join(what)} in {self.storage.describe()}; "
                    "run a backup first or check BACKUP_DIR"
                )
            if bad is not None and newest_bad is not None and newest_bad > candidates[0].id:
                get_logger("catalog").warning(
                    "the newest backup is unusable, using an older one: %s", bad
                )
            return candidates[0]
        for m in manifests:
            if m.id == ref:
                return m
        corrupt = scan.corrupt_error(ref)
        if corrupt is not None:
            raise corrupt
        raise NotFoundError(
            f"backup {ref!r} not found in {self.storage.describe()}; "
            "`seawall postgres list` shows the ids"
        )

    def delete(self, manifest: Manifest) -> None:
        """Delete a backup: manifest first, then its artifacts, then leftovers."""
        prefix = backup_prefix(manifest.engine, manifest.kind, manifest.series, manifest.id)
        self.storage.delete(manifest_key(manifest))
        for art in manifest.artifacts:
            self.storage.delete(f"{prefix}/{art.name}")
        for info in list(self.storage.list(prefix)) + list(self.storage.list_partials(prefix)):
            self.storage.delete(info.key)

    def orphans(self, engine: str | None = None) -> Iterable[str]:
        """Backup directories with files but no manifest (crashed or half-pruned)."""
        prefix = engine or ""
        with_manifest: set[str] = set()
        dirs: set[str] = set()
        for info in self.storage.list(prefix):
            parts = info.key.split("/")
            if len(parts) == 5 and is_backup_id(parts[3]):
                d = "/".join(parts[:4])
                dirs.add(d)
                if parts[4] == MANIFEST_NAME:
                    with_manifest.add(d)
        return sorted(dirs - with_manifest)
