"""Base backups of clusters with tablespaces: one artifact per archive.

The server sends each tablespace as its own tar (``<oid>.tar``, contents
relative to the tablespace directory) and the main data directory last
(:mod:`seawall.postgres.physical.replstream`). Each goes through the same
pipeline as a plain base backup (compression, age, the repository and its
mirrors) as its own artifact, role ``tablespace``, named
``tablespace-<oid>.tar…``; the manifest lists every tablespace with its
oid, name, original location and artifact (``PostgresInfo.tablespaces``),
and each artifact's sha256 like any other. ``base.tar`` carries a
``tablespace_map`` instead of the pg_tblspc symlinks: a restore writes it
again with the locations it chose (docs/adr/0019).
"""

from __future__ import annotations

import json
from typing import Any

from seawall.catalog.models import Manifest, StreamCheck, Tablespace
from seawall.catalog.runs import artifact_from_store
from seawall.catalog.store import artifact_key
from seawall.context import Context
from seawall.errors import RefusedError
from seawall.pipeline.store import store_stream
from seawall.pipeline.tarscan import TarScanner, TarStructureError, parse_backup_label
from seawall.postgres.physical.replstream import ArchiveReader, BaseBackupStream, PumpedReader
from seawall.postgres.tools.base import ConnParams

ARTIFACT_ROLE = "tablespace"
#: the first server version whose BASE_BACKUP sends every archive in one stream
MIN_VERSION_NUM = 150000


def artifact_name(oid: int, suffix: str) -> str:
    return f"tablespace-{oid}.tar{suffix}"


def _check_locations(locations: list[tuple[int, str]], names: dict[int, str]) -> None:
    """Refuse, before a byte streams, a location the manifest cannot record.

    Why: the manifest is UTF-8 JSON and a restore writes the location back
    byte for byte; a directory name in another encoding (a LATIN1 cluster's
    ``café``) made the whole backup stream and then fail as an internal error."""
    for oid, loc in locations:
        try:
            loc.encode("utf-8")
        except UnicodeEncodeError:
            raw = loc.encode("utf-8", "surrogateescape")
            raise RefusedError(
                f"tablespace {names.get(oid, str(oid))!r} (oid {oid}) is at {raw!r}, a path "
                "that is not UTF-8, which the manifest cannot record; move its objects to a "
                "tablespace whose directory name is UTF-8, or protect its databases with "
                "logical backups (seawall postgres backup)"
            ) from None


def store_with_tablespaces(
    ctx: Context,
    conn: ConnParams,
    manifest: Manifest,
    names: dict[int, str],
    fast_checkpoint: bool,
    progress: Any,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Stream every archive of one ``BASE_BACKUP`` into its artifact.

    ``names`` maps tablespace oids to names (from the server's catalog).
    Returns the backup_label and the parsed backup_manifest of base.tar.
    Artifacts are recorded in the manifest as soon as each is committed, so
    a failure later removes them too (catalog.run).
    """
    pg = manifest.postgres
    assert pg is not None
    if (pg.server_version_num or 0) < MIN_VERSION_NUM:
        raise RefusedError(
            f"the cluster has tablespace(s) and runs PostgreSQL {pg.server_version}: base "
            "backups with tablespaces need PostgreSQL 15 or later (one BASE_BACKUP stream); "
            "protect its databases with logical backups (seawall postgres backup)"
        )
    spec = ctx.spec
    stream = BaseBackupStream.open(conn, f"seawall {manifest.id}", fast_checkpoint=fast_checkpoint)
    locations = dict(stream.tablespaces)
    spaces: list[Tablespace] = []
    label: dict[str, str] = {}
    backup_manifest: dict[str, Any] = {}
    try:
        _check_locations(stream.tablespaces, names)
        while (archive := stream.next_archive()) is not None:
            oid = archive.oid
            is_base = archive.name == "base.tar"
            if not is_base and (oid is None or oid not in locations):
                raise TarStructureError(f"BASE_BACKUP sent an unknown archive {archive.name!r}")
            scanner = TarScanner()
            reader = PumpedReader(stream, ArchiveReader(stream, inject_manifest=is_base))

            def before_commit(scanner: TarScanner = scanner, is_base: bool = is_base) -> None:
                scanner.finish()
                if is_base and not {"backup_label", "backup_manifest"} <= set(scanner.captured):
                    raise TarStructureError("base.tar has no backup_label/backup_manifest")

            if is_base:
                name, role = "base.tar" + spec.suffix(), "base"
            else:
                assert oid is not None
                name, role = artifact_name(oid, spec.suffix()), ARTIFACT_ROLE
            result = store_stream(
                reader,  # type: ignore[arg-type]
                ctx.storage,
                artifact_key(manifest, name),
                spec,
                before_commit=before_commit,
                progress=progress,
                tap=scanner.feed,
            )
            art = artifact_from_store(name, role, result, "application/x-tar")
            what = "backup_label and backup_manifest present" if is_base else "a tablespace"
            art.stream_check = StreamCheck(
                format="tar",
                ok=True,
                detail=f"{scanner.members} members read header by header (checksums ok) to "
                f"the end-of-archive marker; {what}",
            )
            manifest.artifacts.append(art)
            if is_base:
                label = parse_backup_label(
                    scanner.captured["backup_label"].decode(errors="replace")
                )
                backup_manifest = json.loads(scanner.captured["backup_manifest"])
                break
            assert oid is not None
            spaces.append(Tablespace(oid=oid, name=names.get(oid, str(oid)),
                                     location=locations[oid], artifact=name))  # fmt: skip
        else:
            raise TarStructureError("BASE_BACKUP sent no base.tar")
        stream.finish()
    finally:
        stream.close()
    missing = sorted(set(locations) - {t.oid for t in spaces})
    if missing:
        raise TarStructureError(f"BASE_BACKUP sent no archive for tablespace(s) {missing}")
    pg.tablespaces = spaces
    return label, backup_manifest
