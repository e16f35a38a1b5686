"""``seawall postgres verify``: prove a backup can be restored.

Levels (``Verification.level``, see :mod:`seawall.catalog.models`):

Stored (no identity here, e.g. right after a backup on a host that holds
only the age recipient): :mod:`seawall.pipeline.stored` re-reads every
artifact's bytes against the sha256 computed while writing, checks the age
header and payload framing, and reports the archive structure dumpscan
recorded while the dump streamed. ``--deep`` needs the identity and says so
(exit 8) instead of pretending.

Decoded (where the key is available): every artifact's stored bytes match
the manifest's sha256 (before anything is decrypted), it decrypts and
decompresses to bytes whose sha256 matches the raw digest taken at backup
time, and ``pg_restore --list`` reads the archive's table of contents.

Deep (``--deep``): a real ``pg_restore`` into a scratch database on the
configured server and the content statistics compared with those taken in
the dump's snapshot. The scratch database is always dropped, also when the
restore fails or the run is interrupted.

The result is written back into the manifest (atomically) so the exporter
and retention see it. Only definite results are recorded: a wrong key or an
unreachable server says nothing about the backup itself. Likewise a
comparison verify cannot make (a checksum in a column order the manifest
did not record, another pg_dump's framing: see :mod:`deepstats`) is listed
as *undecided* and passes: marking a good backup failed would take it out
of retention.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seawall.catalog.models import Manifest, Verification, VerificationLevel, utcnow
from seawall.context import Context
from seawall.errors import DecryptionError, NotFoundError, SeawallError, VerificationError
from seawall.log import get_logger
from seawall.pipeline.decode import decode_to
from seawall.pipeline.stored import check_stored, identity_free, missing_key_hint
from seawall.postgres.logical import deepstats, server, stats
from seawall.postgres.logical.select import BackupSource
from seawall.postgres.tools.base import ConnParams
from seawall.postgres.tools.pg_restore import ArchiveLister, PgRestore

log = get_logger("postgres.verify")
PGDMP_MAGIC = b"PGDMP"

Progress = Callable[[int], None]


class _ListFeeder:
    """Hands decoded bytes to ``pg_restore --list``, hashing them when the
    manifest recorded a raw sha256 to compare with (older backups)."""

    def __init__(self, lister: ArchiveLister, hashing: bool) -> None:
        self.lister = lister
        self.hash = hashlib.sha256() if hashing else None

    def write(self, data: bytes) -> int:
        if self.hash is not None:
            self.hash.update(data)
        return self.lister.write(data)


class _HashSink:
    def __init__(self, fh: object | None = None, hashing: bool = True) -> None:
        self.hash = hashlib.sha256() if hashing else None
        self.fh = fh
        self.head = b""

    def write(self, data: bytes) -> int:
        if self.hash is not None:
            self.hash.update(data)
        if len(self.head) < 64:
            self.head += data[: 64 - len(self.head)]
        if self.fh is not None:
            self.fh.write(data)  # type: ignore[attr-defined]
        return len(data)


def _pg_restore(ctx: Context, min_major: int | None) -> PgRestore:
    params = ConnParams.from_settings(ctx.settings)
    return PgRestore(server.tool_path(ctx.settings, "pg_restore", min_major), params)


def _dump_major(m: Manifest | None) -> int | None:
    if m is None or m.postgres is None or m.postgres.server_version_num is None:
        return None
    return m.postgres.server_version_num // 10000


def check_artifacts(
    ctx: Context, source: BackupSource, progress: Progress | None = None
) -> list[str]:
    """Shallow checks of a manifest's artifacts; raises on the first failure."""
    m = source.manifest
    assert m is not None
    _require_complete(source, m)
    checks: list[str] = []
    for art in m.artifacts:
        key = source.key(art.name)
        if art.role == "dump":
            restore = _pg_restore(ctx, _dump_major(m))
            feeder = _ListFeeder(restore.lister(), hashing=bool(art.raw_sha256))
            try:
                decode_to(
                    source.storage,
                    key,
                    feeder,
                    ctx.keys,
                    expected_sha256=art.sha256,
                    expected_size=art.stored_size,
                    compression=art.compression,
                    progress=progress,
                )
            finally:
                code, out, err = feeder.lister.finish()
            if feeder.hash is not None and feeder.hash.hexdigest() != art.raw_sha256:
                raise VerificationError(
                    f"{source.label}: {art.name} decodes to different bytes than were dumped "
                    "(raw sha256 mismatch); the artifact is corrupt"
                )
            if code != 0:
                detail = err.strip().splitlines()
                raise VerificationError(
                    f"{source.label}: pg_restore --list cannot read {art.name}: "
                    f"{detail[-1] if detail else f'exit {code}'}"
                )
            entries = sum(1 for ln in out.splitlines() if ln and not ln.startswith(";"))
            checks.append(
                f"{art.name}: sha256 ok, decoded ok, pg_restore --list ok ({entries} entries)"
            )
        else:
            sink = _HashSink(hashing=bool(art.raw_sha256))
            decode_to(
                source.storage,
                key,
                sink,
                ctx.keys,
                expected_sha256=art.sha256,
                expected_size=art.stored_size,
                compression=art.compression,
            )
            if sink.hash is not None and sink.hash.hexdigest() != art.raw_sha256:
                raise VerificationError(
                    f"{source.label}: {art.name} decodes to different bytes than were stored "
                    "(raw sha256 mismatch); the artifact is corrupt"
                )
            checks.append(f"{art.name}: sha256 ok, decoded ok")
    return checks


def _require_complete(source: BackupSource, m: Manifest) -> None:
    """A successful manifest with a dump, and every artifact present."""
    if not m.ok:
        raise VerificationError(f"{source.label} is a failed backup ({m.error}); nothing to verify")
    if m.artifact("dump") is None:
        raise VerificationError(f"{source.label}: the manifest lists no dump artifact")
    for art in m.artifacts:
        if not source.storage.exists(source.key(art.name)):
            raise NotFoundError(
                f"{source.label}: artifact {art.name} is missing from {source.storage.describe()}; "
                "the backup is incomplete, restore from another one"
            )


def check_stored_artifacts(ctx: Context, source: BackupSource) -> list[str]:
    """The identity-free level (see :mod:`seawall.pipeline.stored`); raises on a failure."""
    m = source.manifest
    assert m is not None
    _require_complete(source, m)
    checks: list[str] = []
    for art in m.artifacts:
        checks += check_stored(source.storage, source.key(art.name), art, ctx.keys, source.label)
    checks.append(
        f"stored level: not decrypted here ({missing_key_hint(m.artifacts)} is not set); "
        "pg_restore --list and a real restore run with `verify --deep` where the identity lives"
    )
    return checks


def decode_dump_to_file(
    ctx: Context, source: BackupSource, directory: Path, progress: Progress | None = None
) -> tuple[Path, bool]:
    """Decode the dump (or foreign file) into ``directory``; returns (path, is_archive)."""
    path = directory / "dump"
    if source.manifest is not None:
        art = source.manifest.artifact("dump")
        if art is None:
            raise VerificationError(f"{source.label}: the manifest lists no dump artifact")
        key, expected, compression = source.key(art.name), art.sha256, art.compression
        raw_expected, size = art.raw_sha256, art.stored_size
        if not source.storage.exists(key):
            raise NotFoundError(
                f"{source.label}: artifact {art.name} is missing; the backup is incomplete"
            )
    else:
        assert source.foreign_key is not None
        key, expected, compression = source.foreign_key, None, None
        raw_expected, size = None, None
    with open(path, "wb") as fh:
        sink = _HashSink(fh, hashing=bool(raw_expected))
        decode_to(
            source.storage,
            key,
            sink,
            ctx.keys,
            expected_sha256=expected,
            expected_size=size,
            compression=compression,
            progress=progress,
        )
    if sink.hash is not None and sink.hash.hexdigest() != raw_expected:
        raise VerificationError(f"{source.label}: dump decodes to different bytes than were dumped")
    return path, sink.head.startswith(PGDMP_MAGIC)


def scratch_name(prefix: str) -> str:
    return f"seawall_{prefix}_{int(time.time())}_{secrets.token_hex(3)}"


def deep_check(
    ctx: Context,
    source: BackupSource,
    progress: Progress | None = None,
    *,
    name: str | None = None,
    after: Callable[[ConnParams, str], None] | None = None,
) -> tuple[list[str], list[str]]:
    """Restore into a scratch database and compare statistics; always drops it.

    ``name`` chooses the scratch database (``seawall drill`` names it so the
    next drill can find it after a kill -9) and ``after`` runs more checks on
    the restored copy (amcheck, a smoke query) before it is dropped. Returns
    the checks done and what could not be decided (see :mod:`deepstats`;
    never a failure).
    """
    from seawall.postgres.logical.legacy import restore_plain_sql

    params = ConnParams.from_settings(ctx.settings)
    workdir = Path(tempfile.mkdtemp(prefix="seawall-verify-"))
    name = name or scratch_name("verify")
    checks: list[str] = []
    undecided: list[str] = []
    try:
        path, is_archive = decode_dump_to_file(ctx, source, workdir, progress)
        with server.admin(params) as conn:
            major = server.server_version_num(conn) // 10000
            encoding = (
                source.manifest.postgres.encoding
                if source.manifest is not None and source.manifest.postgres is not None
                else None
            )
            server.create_database(conn, name, encoding)
            try:
                if is_archive:
                    dump_major = _dump_major(source.manifest)
                    restore = _pg_restore(ctx, max(major, dump_major or 0))
                    restore.restore(
                        path,
                        name,
                        jobs=ctx.settings.restore_jobs,
                        no_owner=True,
                        # content does not depend on placement: a scratch or
                        # drill server (DRILL_DB_HOST) need not have the
                        # source's tablespaces, and scratch copies stay off them
                        no_tablespaces=True,
                        # a database holding a subscription cannot be
                        # dropped: every verify and drill left its scratch
                        # copy behind (a full copy of the database a night)
                        no_subscriptions=True,
                        # a DDL guard (an event trigger raising on
                        # ddl_command_start) would refuse the checks' own
                        # DDL in the copy: drills failed, checksums undecided
                        no_event_triggers=True,
                        exit_on_error=True,
                    )
                else:
                    restore_plain_sql(ctx, path, name, major)
                checks.append(f"restored into scratch database {name}")
                expected = (
                    source.manifest.postgres.stats
                    if source.manifest is not None and source.manifest.postgres is not None
                    else None
                )
                made_by = (source.manifest.tool_versions if source.manifest else {}).get("pg_dump")
                with (
                    server.connect(params, name) as sconn,
                    server.ddl("statistics of the restored copy"),
                ):
                    if expected is None:
                        actual = stats.collect(sconn)
                    else:
                        measured = deepstats.measure(
                            ctx, params, sconn, name, major, expected, made_by
                        )
                if expected is None:
                    checks.append(
                        f"no statistics recorded; restored {len(actual.tables)} tables, "
                        f"{sum(t.rows for t in actual.tables.values())} rows"
                    )
                else:
                    undecided += measured.undecided
                    problems = measured.problems + stats.compare(
                        measured.expected, measured.actual, measured.descending
                    )
                    if problems:
                        raise VerificationError(
                            f"{source.label}: restored data differs from the backup: "
                            + "; ".join(problems[:5])
                            + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
                        )
                    checks.append(
                        f"statistics match: {len(expected.tables)} tables, "
                        f"{sum(t.rows for t in expected.tables.values())} rows, "
                        f"{len(expected.sequences)} sequences, "
                        f"{expected.large_objects} large objects"
                        + (f" ({len(undecided)} undecided)" if undecided else "")
                    )
                if after is not None:  # a drill's own checks (amcheck, smoke query)
                    after(params, name)
            finally:
                try:
                    server.drop_database(conn, name)
                except Exception as exc:  # report, do not hide the first error
                    log.error("could not drop scratch database %s: %s; drop it by hand", name, exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return checks, undecided


def verify_source(
    ctx: Context,
    source: BackupSource,
    *,
    deep: bool,
    progress: Progress | None = None,
    stored_only: bool = False,
) -> Verification:
    """Verify and record; raises VerificationError (exit 3) if it failed.

    Without the key the backup was encrypted for (or with ``stored_only``)
    the ``stored`` level runs; ``deep`` then raises DecryptionError (exit 8)
    before touching anything: a restore cannot be faked without the key.
    """
    t0 = time.monotonic()
    checks: list[str] = []
    m = source.manifest
    stored = m is not None and (stored_only or identity_free(m.artifacts, ctx.keys))
    if stored and deep:
        assert m is not None
        raise DecryptionError(
            f"{source.label}: verify --deep decrypts and restores, so it runs where the identity "
            f"lives: set {missing_key_hint(m.artifacts)}; without it `seawall postgres verify` "
            "checks the stored bytes only"
        )
    level: VerificationLevel = "deep" if deep else ("stored" if stored else "decoded")
    undecided: list[str] = []
    try:
        if stored:
            checks += check_stored_artifacts(ctx, source)
        elif source.manifest is not None:
            checks += check_artifacts(ctx, source, progress)
        else:
            from seawall.postgres.logical.legacy import check_foreign

            checks += check_foreign(ctx, source, progress)
        if deep:
            deep_checks, undecided = deep_check(ctx, source, progress)
            checks += deep_checks
    except (VerificationError, NotFoundError) as exc:
        _record(
            ctx,
            source,
            Verification(
                at=utcnow(),
                ok=False,
                deep=deep,
                level=level,
                duration_seconds=round(time.monotonic() - t0, 3),
                message=str(exc),
                checks=checks,
            ),
        )
        raise
    result = Verification(
        at=utcnow(),
        ok=True,
        deep=deep,
        level=level,
        duration_seconds=round(time.monotonic() - t0, 3),
        message=("ok" if not stored else "ok (stored level: the content was not decrypted here)")
        + (f"; {len(undecided)} undecided" if undecided else ""),
        checks=checks,
        undecided=undecided,
    )
    _record(ctx, source, result)
    return result


def _record(ctx: Context, source: BackupSource, verification: Verification) -> None:
    m = source.manifest
    if m is None or not m.ok:
        return
    m.verification = verification
    try:
        if source.in_catalog:
            ctx.catalog.write(m)
        else:
            loc = source.manifest_location()
            assert loc is not None
            source.storage.write_bytes(loc, m.to_json())
    except SeawallError as exc:
        log.warning("could not record the verification in the manifest: %s", exc)
