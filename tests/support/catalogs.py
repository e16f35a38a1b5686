"""Build catalogs on disk through the real catalog and pipeline code.

Used where a test needs hundreds of backups spread over months (retention,
exporter scale): taking that many real dumps would take hours, so the
artifacts are real pipeline output of small payloads, written with the real
catalog writer, with chosen timestamps.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from seawall.catalog import Artifact, Catalog, Manifest, new_backup_id
from seawall.catalog.store import artifact_key
from seawall.pipeline import PipelineSpec, store_stream
from seawall.storage.local import LocalStorage


def add_backup(
    catalog: Catalog,
    *,
    engine: str = "postgresql",
    kind: str = "logical",
    series: str = "app",
    end: datetime,
    ok: bool = True,
    payload: bytes = b"x" * 1000,
    verified: bool | None = None,
) -> Manifest:
    """Write one backup (artifact + manifest) ending at ``end``."""
    start = end - timedelta(seconds=30)
    m = Manifest(
        id=new_backup_id(start),
        engine=engine,  # type: ignore[arg-type]
        kind=kind,
        series=series,
        target="test",
        status="success" if ok else "failed",
        started_at=start,
        finished_at=end,
        duration_seconds=30.0,
        error=None if ok else "simulated failure",
    )
    if ok:
        assert isinstance(catalog.storage, LocalStorage)
        res = store_stream(
            io.BytesIO(payload), catalog.storage, artifact_key(m, "dump.bin.zst"), PipelineSpec()
        )
        m.artifacts.append(
            Artifact(
                name="dump.bin.zst",
                role="dump",
                stored_size=res.stored_size,
                raw_size=res.raw_size,
                sha256=res.sha256,
                compression="zstd",
            )
        )
    if verified is not None:
        from seawall.catalog import Verification

        m.verification = Verification(
            at=end, ok=verified, deep=False, duration_seconds=1.0, message="test"
        )
    catalog.write(m)
    return m
