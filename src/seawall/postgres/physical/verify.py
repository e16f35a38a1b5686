"""Verification of a base backup.

Stored (no identity here, e.g. right after a backup on a host that holds
only the age recipient; :mod:`seawall.pipeline.stored`): the stored bytes
re-read against the sha256 computed while writing, the age header and
payload framing, and the tar structure recorded while pg_basebackup's
stream went through the tar scanner. ``deep`` needs the identity (exit 8).

Decoded (where the key is available, after every backup): the stored bytes match the manifest's sha256,
they decode (decrypt, decompress) to the raw sha256 recorded at backup time,
and the result is a well-formed tar holding ``backup_label`` and
``backup_manifest``.

Deep (``verify_base_backup(..., deep=True)``): unpack into a scratch
directory, fetch the backup's WAL (start..stop segment) from the archive —
a missing segment fails the check, since the backup cannot become
consistent without it — and run ``pg_verifybackup`` with that WAL, which
checks every file against ``backup_manifest`` and parses the WAL range.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from seawall.catalog.models import Artifact, Manifest, Verification, VerificationLevel
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.errors import DecryptionError, NotFoundError, SeawallError
from seawall.pipeline.decode import decode_to
from seawall.pipeline.stored import check_stored, identity_free, missing_key_hint
from seawall.pipeline.tarscan import TarScanner, TarStructureError
from seawall.postgres.tools.pg_ctl import find_pg_binary as find_binary
from seawall.postgres.tools.pg_verifybackup import verifybackup
from seawall.postgres.tools.tar import extract_tar
from seawall.postgres.wal.envconfig import WalConfig
from seawall.postgres.wal.fetch import fetch_wal
from seawall.walcore.names import segment_range


def wal_config(ctx: Context) -> WalConfig:
    """The WAL commands' view of a full Settings (same storage and keys)."""
    s = ctx.settings
    return WalConfig(
        backup_dir=s.repository,
        cluster=s.pg_cluster_name,
        compression=s.compression,
        compression_level=s.compression_level,
        compression_threads=s.compression_threads,
        encryption=s.encryption,
        keys=ctx.keys,
    )


class _ScanSink:
    def __init__(self, scanner: TarScanner, extra: object | None = None) -> None:
        self.scanner = scanner
        self.hash = hashlib.sha256()
        self._extra = extra

    def write(self, data: bytes) -> int:
        self.scanner.feed(data)
        self.hash.update(data)
        if self._extra is not None:
            self._extra.write(data)  # type: ignore[attr-defined]
        return len(data)


def verify_base_backup(
    ctx: Context, manifest: Manifest, deep: bool = False, stored_only: bool = False
) -> Verification:
    """Check a base backup; never raises for a failed check (the result says).

    A key problem is not a check result: without the identity the ``stored``
    level runs (``deep`` raises DecryptionError), and a configured identity
    that does not open the backup raises DecryptionError, recording nothing.
    """
    t0 = time.monotonic()
    checks: list[str] = []
    ok = True
    message = "ok"
    scratch: Path | None = None
    stored = stored_only or identity_free(manifest.artifacts, ctx.keys)
    if stored and deep:
        raise DecryptionError(
            f"base backup {manifest.id}: a deep verification decrypts and unpacks it, so it "
            f"runs where the identity lives: set {missing_key_hint(manifest.artifacts)}; "
            "without it `seawall postgres verify` checks the stored bytes only"
        )
    level: VerificationLevel = "deep" if deep else ("stored" if stored else "decoded")
    try:
        art = manifest.artifact("base")
        if art is None:
            raise TarStructureError("the manifest lists no base artifact")
        spaces = _tablespace_artifacts(manifest)
        if stored:
            for each in [art, *(a for _, a in spaces)]:
                each_key = artifact_key(manifest, each.name)
                if not ctx.storage.exists(each_key):
                    raise NotFoundError(
                        f"base backup {manifest.id}: {each.name} is missing from "
                        f"{ctx.storage.describe()}; the backup is incomplete"
                    )
                checks += check_stored(
                    ctx.storage, each_key, each, ctx.keys, f"base backup {manifest.id}"
                )
            checks.append(
                f"stored level: not decrypted here ({missing_key_hint(manifest.artifacts)} "
                "is not set); decrypting and pg_verifybackup run where the identity lives"
            )
            return _result(t0, True, deep, level, "ok (stored level: not decrypted here)", checks)
        data_dir = None
        if deep:
            scratch = Path(tempfile.mkdtemp(prefix="seawall-verify-", dir=str(_scratch_root(ctx))))
            data_dir = scratch / "data"
            data_dir.mkdir()
        scanner, raw_ok, tar_rc, tar_err = _decode_tar(ctx, manifest, art, data_dir)
        checks.append("sha256 of stored bytes")
        if not raw_ok:
            raise TarStructureError("decoded content does not match the recorded raw sha256")
        checks.append("decrypt + decompress, raw sha256")
        scanner.finish()
        for member in ("backup_label", "backup_manifest"):
            if member not in scanner.captured:
                raise TarStructureError(f"the tar has no {member}")
        checks.append(f"tar structure ({scanner.members} members)")
        for oid, ts_art in spaces:
            dest = None
            if deep:
                assert scratch is not None
                dest = scratch / "tablespaces" / str(oid)
                dest.mkdir(parents=True)
                (scratch / "data" / "pg_tblspc").mkdir(exist_ok=True)
                (scratch / "data" / "pg_tblspc" / str(oid)).symlink_to(dest)
            members = _check_tar(ctx, manifest, ts_art, dest)
            checks.append(
                f"tablespace {oid} ({ts_art.name}): sha256, decrypt + decompress, raw sha256, "
                f"tar structure ({members} members)"
            )
        if deep:
            assert scratch is not None
            if tar_rc != 0:
                raise TarStructureError(f"tar could not unpack the backup: {tar_err.strip()[:200]}")
            ok, message = _deep(ctx, manifest, scratch, checks)
    except DecryptionError:
        raise
    except (SeawallError, TarStructureError) as exc:
        ok = False
        message = str(exc)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return _result(t0, ok, deep, level, message, checks)


def _tablespace_artifacts(manifest: Manifest) -> list[tuple[int, Artifact]]:
    """(oid, artifact) of every tablespace the manifest lists; a listed
    tablespace without its artifact is an incomplete backup."""
    out = []
    spaces = (manifest.postgres.tablespaces if manifest.postgres else None) or []
    for t in spaces:
        art = next((a for a in manifest.artifacts if a.name == t.artifact), None)
        if art is None:
            raise TarStructureError(
                f"the manifest lists tablespace {t.name!r} but not its artifact {t.artifact}"
            )
        out.append((t.oid, art))
    return out


def _decode_tar(
    ctx: Context, manifest: Manifest, art: Artifact, dest: Path | None
) -> tuple[TarScanner, bool, int, str]:
    """Decode one tar artifact, scanned (and unpacked into ``dest`` when given):
    the scanner, whether the raw sha256 matched, and tar's exit status and
    message (the callers word and order their refusals themselves)."""
    scanner = TarScanner()
    tar = extract_tar(dest) if dest is not None else None
    sink = _ScanSink(scanner, tar.stdin if tar else None)
    rc, err = 0, ""
    try:
        decode_to(
            ctx.storage,
            artifact_key(manifest, art.name),
            sink,
            ctx.keys,
            expected_sha256=art.sha256,
            expected_size=art.stored_size,
        )
    finally:
        if tar is not None:
            rc, err = tar.finish()
    raw_ok = not art.raw_sha256 or sink.hash.hexdigest() == art.raw_sha256
    return scanner, raw_ok, rc, err


def _check_tar(ctx: Context, manifest: Manifest, art: Artifact, dest: Path | None) -> int:
    """Decode one tar artifact (into ``dest`` when given); its member count."""
    scanner, raw_ok, rc, err = _decode_tar(ctx, manifest, art, dest)
    if not raw_ok:
        raise TarStructureError(f"{art.name}: decoded content does not match the raw sha256")
    scanner.finish()
    if rc != 0:
        raise TarStructureError(f"tar could not unpack {art.name}: {err.strip()[:200]}")
    return scanner.members


def _result(
    t0: float, ok: bool, deep: bool, level: VerificationLevel, message: str, checks: list[str]
) -> Verification:
    return Verification(
        at=datetime.now(UTC),
        ok=ok,
        deep=deep,
        level=level,
        duration_seconds=round(time.monotonic() - t0, 3),
        message=message,
        checks=checks,
    )


def _scratch_root(ctx: Context) -> Path:
    return Path(tempfile.gettempdir())


def _deep(ctx: Context, manifest: Manifest, scratch: Path, checks: list[str]) -> tuple[bool, str]:
    pg = manifest.postgres
    if pg is None or not pg.start_wal or not pg.stop_wal:
        return False, "the manifest has no WAL range; cannot verify deeply"
    seg_size = pg.wal_segment_size or 16 * 1024 * 1024
    wal_dir = scratch / "wal"
    wal_dir.mkdir()
    cfg = wal_config(ctx)
    missing = []
    for name in segment_range(pg.start_wal, pg.stop_wal, seg_size):
        try:
            fetch_wal(cfg, name, wal_dir / name)
        except NotFoundError:
            missing.append(name)
    if missing:
        return False, (
            f"WAL needed by base backup {manifest.id} is missing from the archive: "
            f"{', '.join(missing)}; the backup cannot be restored"
        )
    checks.append(f"WAL {pg.start_wal}..{pg.stop_wal} in the archive")
    major = (pg.server_version_num or 0) // 10000 or None
    binary = find_binary("pg_verifybackup", ctx.settings.pg_bin_dir, min_major=major)
    ok, out = verifybackup(binary, scratch / "data", wal_dir=wal_dir)
    if not ok:
        lines = [ln for ln in out.splitlines() if ln.strip()]
        return False, "pg_verifybackup: " + "; ".join(lines[:5])
    checks.append("pg_verifybackup (files + WAL)")
    return True, "ok"
