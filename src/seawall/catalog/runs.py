"""What every engine's backup run records: artifacts and failures.

Shared by the PostgreSQL (logical, base) and Qdrant use cases so that a
failed run looks the same in the catalog whatever the engine: artifacts
removed, temporaries removed, status ``failed``, the error's one-line
message, the duration; the first error is kept even when the volume is too
full to record it. A run whose target does not exist and was never backed
up is recorded as *rejected* instead (catalog/rejected.py).
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from seawall.catalog.models import MANIFEST_NAME, Artifact, Encryption, Manifest, utcnow
from seawall.catalog.rejected import TargetMissing, rejected_prefix
from seawall.catalog.store import Catalog, artifact_key, backup_prefix
from seawall.errors import SeawallError
from seawall.log import get_logger

log = get_logger("catalog")


class StoredLike(Protocol):
    """What the pipeline reports about a stored artifact (pipeline.StoreResult)."""

    raw_size: int
    stored_size: int
    sha256: str
    raw_sha256: str
    compression: str
    encryption_mode: str | None
    recipient_fingerprints: list[str]


def artifact_from_store(
    name: str,
    role: str,
    res: StoredLike,
    content_type: str = "application/octet-stream",
    **extra: Any,
) -> Artifact:
    """The manifest entry of an artifact the pipeline just stored."""
    enc = (
        Encryption(mode=res.encryption_mode, recipient_fingerprints=res.recipient_fingerprints)  # type: ignore[arg-type]
        if res.encryption_mode
        else None
    )
    return Artifact(
        name=name,
        role=role,
        stored_size=res.stored_size,
        raw_size=res.raw_size,
        sha256=res.sha256,
        raw_sha256=res.raw_sha256 or None,
        compression=res.compression,  # type: ignore[arg-type]
        encryption=enc,
        content_type=content_type,
        **extra,
    )


def failure_message(exc: BaseException) -> str:
    if isinstance(exc, SeawallError):
        text = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:1000]


def record_failure(
    catalog: Catalog, manifest: Manifest, exc: BaseException, duration: float | None = None
) -> None:
    """Remove what the run stored and write its failed manifest (best effort)."""
    storage = catalog.storage
    for art in manifest.artifacts:
        with contextlib.suppress(Exception):
            storage.delete(artifact_key(manifest, art.name))
    # temporaries a failing writer could not remove (a full volume can fail the cleanup too)
    prefix = backup_prefix(manifest.engine, manifest.kind, manifest.series, manifest.id)
    with contextlib.suppress(Exception):
        for info in list(storage.list_partials(prefix)):
            storage.delete(info.key)
    manifest.artifacts = []
    manifest.status = "failed"
    manifest.finished_at = utcnow()
    if duration is None:
        duration = (manifest.finished_at - manifest.started_at).total_seconds()
    manifest.duration_seconds = round(duration, 3)
    manifest.error = failure_message(exc)
    try:
        if isinstance(exc, TargetMissing) and not _ever_succeeded(catalog, manifest):
            # a typo must not create a series that pages for a week (catalog/rejected.py)
            key = f"{rejected_prefix(manifest)}/{MANIFEST_NAME}"
            storage.write_bytes(key, manifest.to_json())
            log.warning(
                "run recorded as rejected: its target does not exist (or could not be listed) and was never backed up",
                extra={"series": manifest.series, "record": key},
            )
            return
        catalog.write(manifest)
    except Exception as write_exc:  # the volume may be full: say so, keep the first error
        log.warning("could not write the failed manifest: %s", write_exc)


def _ever_succeeded(catalog: Catalog, manifest: Manifest) -> bool:
    scan = catalog.scan(manifest.engine, manifest.kind, manifest.series)
    return any(m.ok for m in scan.manifests) or bool(scan.errors)
