"""``seawall sync``: give each mirror what it misses, checked, manifests last.

Why a full comparison and not only the records: the wrapper records every
object a mirror missed (``mirrors/<id>/pending/``, storage/mirror.py), but a
mirror can also lose objects on its own (a bucket emptied by a mistaken
lifecycle rule, a volume restored from an old snapshot). ``sync`` lists the
primary and the mirror and copies what is missing, what differs in size and
what a record names (a manifest rewritten while the mirror was down has
the same key in both). It never deletes from a mirror because the primary
lacks something — the primary may be the damaged one; deletions happen
only as recorded by prune through the wrapper.

Order: per mirror, every non-manifest object first, then the manifests, and
the manifest of a backup whose artifact could not be copied is held back:
a half-synced backup does not exist in the mirror (no manifest, no backup).

Checks on the way: an artifact's bytes are hashed while copied and the
mirror's write is aborted unless they match the manifest's sha256 (a corrupt
primary copy is reported, not spread); everything else (manifests, WAL
segments, whose names carry the raw WAL's sha256 that only a decode with
the identity could check, drill records) is read back from the mirror after
the copy and compared with the sha256 of the bytes read from the primary.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from seawall.catalog.models import MANIFEST_NAME
from seawall.catalog.naming import is_backup_id
from seawall.catalog.store import CatalogError, parse_manifest
from seawall.errors import NotFoundError, SeawallError, StorageError, VerificationError
from seawall.log import get_logger
from seawall.storage.base import Storage
from seawall.storage.mirror import CHUNK, Mirror, copy_object
from seawall.storage.mirror_layout import (
    deletes_prefix,
    down_marker,
    is_mirrored_key,
    pending_prefix,
)

log = get_logger("sync")

#: Temporaries in a mirror older than this are leftovers of a killed copy (a
#: multipart upload the dead server could not abort); younger ones may be a
#: backup's copy in flight right now.
STALE_PARTIAL_SECONDS = 3600.0


@dataclass
class MirrorReport:
    """What ``sync`` did (or would do, with ``--dry-run``) for one mirror."""

    location: str
    id: str
    reachable: bool = True
    copied: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)
    stale_records: int = 0
    partials_removed: list[str] = field(default_factory=list)
    #: with ``deep``: copies the mirror held whose bytes were wrong (copied again)
    damaged: list[dict[str, str]] = field(default_factory=list)
    #: objects the mirror holds and the primary lacks (never deleted by sync)
    only_in_mirror: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.reachable and not self.failed and not self.held_back

    def to_dict(self) -> dict[str, Any]:
        return {
            "mirror": self.location,
            "id": self.id,
            "reachable": self.reachable,
            "complete": self.complete,
            "copied": self.copied,
            "copied_bytes": sum(int(c["size"]) for c in self.copied),
            "deleted": self.deleted,
            "failed": self.failed,
            "held_back": self.held_back,
            "stale_records_removed": self.stale_records,
            "partials_removed": self.partials_removed,
            "damaged": self.damaged,
            "only_in_mirror": self.only_in_mirror,
        }


def _backup_dir(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 5 and is_backup_id(parts[3]):
        return "/".join(parts[:4])
    return None


def _sha256_of(storage: Storage, key: str) -> str:
    h = hashlib.sha256()
    with storage.open_read(key) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _artifact_shas(primary: Storage, dirs: set[str]) -> dict[str, str]:
    """key -> sha256 from each backup's manifest (the manifests of ``dirs`` in the primary)."""
    shas: dict[str, str] = {}
    for d in sorted(dirs):
        try:
            m = parse_manifest(primary.read_bytes(f"{d}/{MANIFEST_NAME}"), d)
        except (CatalogError, SeawallError):
            continue  # no (readable) manifest: the files are copied, read back and compared
        for art in m.artifacts:
            shas[f"{d}/{art.name}"] = art.sha256
    return shas


def _copy_checked(
    primary: Storage, mirror: Storage, key: str, expected: str | None
) -> tuple[str, int]:
    digest, size = copy_object(primary, mirror, key, expected)
    if expected is None:
        back = _sha256_of(mirror, key)
        if back != digest:
            raise VerificationError(
                f"{key}: the mirror's copy reads back as sha256 {back[:16]}…, "
                f"the primary's is {digest[:16]}…"
            )
    return digest, size


def _damaged_copy(primary: Storage, mirror: Storage, key: str, expected: str | None) -> str:
    """Why the mirror's copy of ``key`` is not the right bytes ("" when it is).

    ``expected``: the manifest's sha256 of an artifact; anything else is
    compared with the primary's copy. A size comparison cannot see a byte
    that rotted at rest in the mirror: this reads it.
    """
    try:
        have = _sha256_of(mirror, key)
    except SeawallError as exc:
        return f"unreadable in the mirror: {str(exc).splitlines()[0][:200]}"
    want = expected or _sha256_of(primary, key)
    if have == want:
        return ""
    source = "the manifest" if expected else "the primary's copy"
    return f"sha256 {have[:16]}… in the mirror, {want[:16]}… in {source}"


def _check_present(
    primary: Storage, mirror: Mirror, keys: list[str], report: MirrorReport
) -> list[str] | None:
    """``deep``: the keys among ``keys`` whose mirror copy is damaged (recorded in report);
    None when the mirror stopped answering (reported)."""
    shas = _artifact_shas(primary, {d for k in keys if (d := _backup_dir(k)) is not None})
    bad = []
    for at, key in enumerate(keys):
        try:
            why = _damaged_copy(primary, mirror.storage, key, shas.get(key))
        except SeawallError as exc:  # the primary's copy could not be read
            report.failed.append({"key": key, "error": str(exc), "kind": "storage"})
            continue
        if why.startswith("unreadable") and not _answers(mirror.storage):
            _gave_up(report, mirror, len(keys) - at - 1)
            return None  # the mirror is gone
        if why:
            report.damaged.append({"key": key, "error": why})
            log.warning(
                "sync to %s: %s is damaged (%s): copying it again", mirror.location, key, why
            )
            bad.append(key)
    return bad


def sync_mirror(
    primary: Storage, mirror: Mirror, *, dry_run: bool = False, deep: bool = False
) -> MirrorReport:
    """Bring one mirror up to the primary; never raises for the mirror's own failures.

    ``deep`` also reads every copy the mirror already holds (same size) and
    copies again the ones whose sha256 is wrong: the only way to find a byte
    that rotted at rest in the mirror, at the price of reading all of it.
    """
    report = MirrorReport(mirror.location, mirror.id)
    pprefix = pending_prefix(mirror.id)
    pending = {i.key[len(pprefix) + 1 :]: i.key for i in primary.list(pprefix)}
    src = {i.key: i.size for i in primary.list() if is_mirrored_key(i.key)}
    try:
        dst = {i.key: i.size for i in mirror.storage.list() if is_mirrored_key(i.key)}
    except StorageError as exc:
        report.reachable = False
        report.failed.append({"key": "", "error": str(exc)})
        return report
    wanted = sorted(k for k, size in src.items() if dst.get(k) != size or k in pending)
    dprefix = deletes_prefix(mirror.id)
    to_delete = {i.key[len(dprefix) + 1 :] for i in primary.list(dprefix)}
    report.only_in_mirror = sorted(
        k for k in dst if k not in src and not any(_covers(d, k) for d in to_delete)
    )
    for key in report.only_in_mirror:
        log.warning(
            "sync to %s: %s is in the mirror only (lost by the primary?): kept there",
            mirror.location,
            key,
        )
    if deep:
        present = sorted(k for k in src if k in dst and k not in wanted)
        damaged = _check_present(primary, mirror, present, report)
        if damaged is None:
            return report
        wanted = sorted(set(wanted) | set(damaged))
    manifests = [k for k in wanted if k.rsplit("/", 1)[-1] == MANIFEST_NAME]
    others = [k for k in wanted if k.rsplit("/", 1)[-1] != MANIFEST_NAME]
    shas = _artifact_shas(primary, {d for k in others if (d := _backup_dir(k)) is not None})
    broken: set[str] = set()
    order = others + manifests
    for at, key in enumerate(order):
        d = _backup_dir(key)
        if key in manifests and d is not None and d in broken:
            report.held_back.append(key)
            continue
        if dry_run:
            report.copied.append({"key": key, "size": src[key]})
            continue
        try:
            digest, size = _copy_checked(primary, mirror.storage, key, shas.get(key))
        except Exception as exc:  # reported per object, the rest goes on
            if not isinstance(exc, SeawallError):
                exc = StorageError(f"{key}: {type(exc).__name__}: {exc}")
            kind = "verification" if isinstance(exc, VerificationError) else "storage"
            report.failed.append({"key": key, "error": str(exc), "kind": kind})
            log.warning("sync to %s: %s not copied: %s", mirror.location, key, exc)
            if d is not None:
                broken.add(d)
            if kind == "storage" and not _answers(mirror.storage):
                _gave_up(report, mirror, len(order) - at - 1)
                return report
            continue
        report.copied.append({"key": key, "size": size, "sha256": digest})
        if key in pending:
            primary.delete(pending.pop(key))
    # records of objects no longer in the primary (pruned since) or already in the mirror
    for key, rkey in pending.items():
        if key not in src:
            report.stale_records += 1
            if not dry_run:
                primary.delete(rkey)
    _apply_deletes(primary, mirror, report, src, dry_run=dry_run)
    _remove_stale_partials(mirror, report, dry_run=dry_run)
    if report.complete and not dry_run:
        primary.delete(down_marker(mirror.id))  # wal-push and backups try it again at once
    return report


def _answers(storage: Storage) -> bool:
    """Whether the mirror still answers (one small listing, within its own deadline).

    Why: a mirror that died mid-sync made every remaining object wait out the
    whole retry budget (MIRROR_TIMEOUT) in turn: seeding 10,000 objects, a
    dead mirror kept sync busy for days before it reported.
    """
    try:
        next(iter(storage.list(MANIFEST_NAME)), None)  # a key that is never there
    except SeawallError:
        return False
    return True


def _gave_up(report: MirrorReport, mirror: Mirror, left: int) -> None:
    report.failed.append(
        {
            "key": "",
            "error": f"the mirror stopped answering: {left} more object(s) not attempted, "
            "its deletions and leftovers not looked at; run `seawall sync` again once it is back",
            "kind": "storage",
        }
    )
    log.warning("sync to %s: the mirror stopped answering; giving up on it", mirror.location)


def _covers(record_key: str, key: str) -> bool:
    """Whether a deletion record (a key, or a tree's prefix) covers ``key``."""
    return key == record_key or key.startswith(record_key.rstrip("/") + "/")


def _apply_deletes(
    primary: Storage, mirror: Mirror, report: MirrorReport, src: dict[str, int], *, dry_run: bool
) -> None:
    """Deletions the mirror missed, manifest-first (as prune did them on the primary)."""
    dprefix = deletes_prefix(mirror.id)
    records = {i.key[len(dprefix) + 1 :]: i.key for i in primary.list(dprefix)}

    def order(key: str) -> tuple[int, str]:
        return (0 if key.endswith(f"/{MANIFEST_NAME}") else 1, key)

    for key in sorted(records, key=order):
        rkey = records[key]
        try:
            tree = b'"delete_tree"' in primary.read_bytes(rkey)
        except NotFoundError:  # removed meanwhile by the run that wrote it (done everywhere)
            continue
        # written again since, or a run killed before the primary's own deletion:
        # the primary holds it, the record is obsolete (the next prune decides again)
        if key in src or (tree and any(_covers(key, k) for k in src)):
            if not dry_run:
                primary.delete(rkey)
            continue
        if dry_run:
            report.deleted.append(key)
            continue
        try:
            (mirror.storage.delete_tree if tree else mirror.storage.delete)(key)
        except SeawallError as exc:
            report.failed.append({"key": key, "error": str(exc), "kind": "storage"})
            continue
        primary.delete(rkey)
        report.deleted.append(key)


def _remove_stale_partials(mirror: Mirror, report: MirrorReport, *, dry_run: bool) -> None:
    """What killed copies left in the mirror (prune cleans the primary's, never a mirror's)."""
    cutoff = time.time() - STALE_PARTIAL_SECONDS
    try:
        partials = list(mirror.storage.list_partials())
    except SeawallError as exc:  # the mirror went away mid-sync: reported, the others go on
        report.failed.append({"key": "", "error": str(exc), "kind": "storage"})
        return
    for info in partials:
        if info.mtime >= cutoff or not is_mirrored_key(info.key):
            continue
        if not dry_run:
            try:
                mirror.storage.delete(info.key)
            except SeawallError as exc:
                log.warning("sync to %s: cannot remove %s: %s", mirror.location, info.key, exc)
                continue
        report.partials_removed.append(info.key)


def sync(
    primary: Storage, mirrors: list[Mirror], *, dry_run: bool = False, deep: bool = False
) -> list[MirrorReport]:
    """Sync every mirror in turn (one unreachable mirror does not stop the others)."""
    return [sync_mirror(primary, m, dry_run=dry_run, deep=deep) for m in mirrors]
