"""``seawall qdrant verify``: prove a snapshot backup is restorable, offline.

Stored level (no identity here, e.g. right after a backup on a host that
holds only the age recipient; :mod:`seawall.pipeline.stored`): the stored
bytes re-read against the sha256 computed while writing, the age header and
payload framing, and the tar structure and Qdrant checksum recorded while
the snapshot streamed (:mod:`.streamcheck`). ``--deep`` needs the identity
(exit 8).

Decoded level (where the key is available), one streaming pass per artifact (bounded memory): the
sha256 of the stored bytes against the manifest, decryption, decompression,
the sha256 of the decoded snapshot against the checksum Qdrant reported at
backup time, and the archive's structure (:mod:`.archive`: config.json,
shard directories with data, every nested segment tar read to its end).

``--deep`` (:mod:`.deep`) then loads each shard's segment data with
qdrant-edge (Qdrant's storage engine, embedded), compares the points count
with the manifest and searches the sample vectors recorded at backup time.

The result is written back into the manifest (``verification``) when the
backup is in the catalog, for the exporter and for retention's
"require verified".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from seawall.catalog.models import Manifest, Verification, VerificationLevel, utcnow
from seawall.context import Context
from seawall.errors import DecryptionError, NotFoundError, SeawallError, VerificationError
from seawall.log import get_logger
from seawall.pipeline.stored import check_stored, identity_free, missing_key_hint
from seawall.qdrant.archive import ArchiveReport, inspect_archive, kind_of
from seawall.qdrant.decoded import open_decoded
from seawall.storage.base import Storage

log = get_logger("qdrant.verify")


@dataclass
class VerifyResult:
    verification: Verification
    error: SeawallError | None = None
    reports: dict[str, ArchiveReport] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verification.ok


def check_artifacts(
    ctx: Context, storage: Storage, manifest: Manifest, key_of: object
) -> tuple[list[str], dict[str, ArchiveReport]]:
    """Standard checks of every artifact; raises on the first failure."""
    checks: list[str] = []
    reports: dict[str, ArchiveReport] = {}
    if not manifest.artifacts:
        raise VerificationError(f"backup {manifest.id} has no artifacts")
    kind = kind_of(manifest.kind)
    for art in manifest.artifacts:
        key = key_of(art.name)  # type: ignore[operator]
        with open_decoded(storage, key, ctx.keys, art.sha256, art.stored_size) as stream:
            report = inspect_archive(stream, kind)  # type: ignore[arg-type]
        digest = stream.hash.hexdigest()
        expected = art.raw_sha256 or getattr(art, "snapshot_checksum", None)
        if stream.count != art.raw_size:
            raise VerificationError(
                f"{art.name}: decoded to {stream.count} bytes, the manifest says {art.raw_size}"
            )
        if expected and digest != expected:
            raise VerificationError(
                f"{art.name}: decoded snapshot sha256 {digest[:16]}… differs from the "
                f"checksum recorded at backup time {expected[:16]}…"
            )
        problems = report.problems()
        if problems:
            raise VerificationError(f"{art.name}: " + "; ".join(problems))
        reports[art.name] = report
        checks.append(
            f"{art.name}: sha256 ok, "
            + ("decrypted, " if art.encryption else "")
            + (f"{art.compression} ok, " if art.compression != "none" else "")
            + "snapshot checksum matches Qdrant's, "
            + report.summary()
        )
    return checks, reports


def check_artifacts_stored(
    ctx: Context, storage: Storage, manifest: Manifest, key_of: object
) -> list[str]:
    """The identity-free level of every artifact; raises on the first failure."""
    if not manifest.artifacts:
        raise VerificationError(f"backup {manifest.id} has no artifacts")
    checks: list[str] = []
    for art in manifest.artifacts:
        key = key_of(art.name)  # type: ignore[operator]
        if not storage.exists(key):
            raise NotFoundError(
                f"backup {manifest.id}: {art.name} is missing from {storage.describe()}; "
                "the backup is incomplete, restore from another one"
            )
        checks += check_stored(storage, key, art, ctx.keys, f"backup {manifest.id}")
    checks.append(
        f"stored level: not decrypted here ({missing_key_hint(manifest.artifacts)} is not "
        "set); the snapshot archive is read and loaded where the identity lives"
    )
    return checks


def verify_after_backup(ctx: Context, manifest: Manifest) -> VerifyResult:
    """The verification right after a backup: the strongest level the keys here
    allow; a configured identity that does not open the backup falls back to
    the stored level (it says nothing about the backup)."""
    res = verify_backup(ctx, ctx.storage, manifest, deep=False, write_back=True)
    if isinstance(res.error, DecryptionError):
        log.warning("%s; verifying the stored bytes only", res.error)
        res = verify_backup(
            ctx, ctx.storage, manifest, deep=False, write_back=True, stored_only=True
        )
    return res


def verify_backup(
    ctx: Context,
    storage: Storage,
    manifest: Manifest,
    *,
    deep: bool,
    write_back: bool,
    in_catalog: bool = True,
    stored_only: bool = False,
) -> VerifyResult:
    """Verify one backup; never raises for a bad backup (see ``VerifyResult.error``).

    A key problem (DecryptionError: ``deep`` without the identity, or an
    identity that does not open it) is returned as the error but not
    written back: it says nothing about the backup.
    """
    from seawall.catalog.store import artifact_key

    def key_of(name: str) -> str:
        return artifact_key(manifest, name) if in_catalog else name

    t0 = time.monotonic()
    checks: list[str] = []
    error: SeawallError | None = None
    reports: dict[str, ArchiveReport] = {}
    stored = stored_only or identity_free(manifest.artifacts, ctx.keys)
    level: VerificationLevel = "deep" if deep else ("stored" if stored else "decoded")
    try:
        if stored and deep:
            raise DecryptionError(
                f"backup {manifest.id}: --deep decrypts and loads the snapshot, so it runs "
                f"where the identity lives: set {missing_key_hint(manifest.artifacts)}; "
                "without it `seawall qdrant verify` checks the stored bytes only"
            )
        if stored:
            checks = check_artifacts_stored(ctx, storage, manifest, key_of)
        else:
            checks, reports = check_artifacts(ctx, storage, manifest, key_of)
        if deep:
            from seawall.qdrant.deep import deep_check

            checks.extend(deep_check(ctx, storage, manifest, key_of))
    except SeawallError as exc:
        error = exc
    ok = error is None
    ok_message = {
        "deep": "deep verification ok (segment data loaded with qdrant-edge)",
        "decoded": "verification ok",
        "stored": "verification ok (stored level: not decrypted here)",
    }[level]
    message = ok_message if ok else str(error)
    verification = Verification(
        at=utcnow(),
        ok=ok,
        deep=deep,
        level=level,
        duration_seconds=round(time.monotonic() - t0, 3),
        message=message[:1000],
        checks=checks,
    )
    if write_back and in_catalog and not isinstance(error, DecryptionError):
        manifest.verification = verification
        try:
            ctx.catalog.write(manifest)
        except SeawallError as exc:
            log.warning("could not record the verification in the manifest: %s", exc)
    log.info(
        "qdrant verify",
        extra={"backup_id": manifest.id, "collection": manifest.series, "ok": ok, "deep": deep},
    )
    return VerifyResult(verification, error, reports)
