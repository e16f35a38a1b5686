"""A synthetic backup volume: 10,000 manifests and 100,000 WAL files.

Manifests are built with seawall's own models (``seawall.catalog``) and
placed where its ``Catalog`` looks for them, so the bench measures the real
reader on the real format. Artifact and WAL files are tiny placeholders:
prune --dry-run and the exporter read names, sizes and manifests, never the
bytes. Files are written without fsync (this is a fixture, not a backup).

The WAL layout is copied from what ``seawall postgres wal-push`` actually
wrote in the wal suite (when it ran), so the fixture follows the archive
format as it evolves; otherwise a documented guess is used and noted.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.context import REPO

SEGMENTS_PER_XLOGID = 0x1_0000_0000 // (16 * 2**20)
SEGMENT_RE = re.compile(r"[0-9A-F]{24}")
# used only if wal-push has not run in this bench run
FALLBACK_WAL_TEMPLATE = "postgresql/wal/main/{segment}.zst.age"


def import_catalog() -> Any:
    """``seawall.catalog`` from the installed package or the source tree."""
    src = str(REPO / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    import seawall.catalog

    return seawall.catalog


def segment_name(timeline: int, segno: int) -> str:
    return f"{timeline:08X}{segno // SEGMENTS_PER_XLOGID:08X}{segno % SEGMENTS_PER_XLOGID:08X}"


def wal_template(sample_dir: Path | None) -> tuple[str, str]:
    """(relative path template with ``{segment}``, how it was found)."""
    if sample_dir is not None and sample_dir.is_dir():
        for dirpath, _dirs, files in os.walk(sample_dir):
            for name in sorted(files):
                m = SEGMENT_RE.search(name)
                if m and not name.startswith("."):
                    rel = (Path(dirpath) / name).relative_to(sample_dir).as_posix()
                    return rel.replace(m.group(0), "{segment}"), "layout of a real wal-push"
    import importlib.util

    if importlib.util.find_spec("seawall.catalog.wal_layout") is None:
        return FALLBACK_WAL_TEMPLATE, "guessed WAL layout (wal-push did not run)"
    return "", "seawall.catalog.wal_layout (as wal-push writes it)"


def build(
    root: Path,
    n_backups: int,
    n_wal: int,
    wal_layout_sample: Path | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """Fill ``root`` (a BACKUP_DIR) and return a description of what is there."""
    cat = import_catalog()
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    databases = [f"app{i:02d}" for i in range(10)]
    per_series = max(1, n_backups // len(databases))
    step = timedelta(hours=6)
    written = 0
    for db in databases:
        for k in range(per_series):
            finished = now - step * k - timedelta(minutes=rng.randint(0, 30))
            started = finished - timedelta(seconds=rng.randint(30, 600))
            failed = rng.random() < 0.02
            backup_id = cat.new_backup_id(started)
            stored = rng.randint(50, 500) * 2**20
            artifacts = (
                []
                if failed
                else [
                    cat.Artifact(
                        name="dump.pgdump.zst.age",
                        role="dump",
                        stored_size=stored,
                        raw_size=stored * 4,
                        sha256="0" * 64,
                        compression="zstd",
                        encryption=cat.Encryption(mode="x25519", recipient_fingerprints=["bench"]),
                    )
                ]
            )
            manifest = cat.Manifest(
                id=backup_id,
                engine="postgresql",
                kind="logical",
                series=db,
                target=f"127.0.0.1:5432/{db}",
                status="failed" if failed else "success",
                started_at=started,
                finished_at=finished,
                duration_seconds=(finished - started).total_seconds(),
                error="bench: synthetic failure" if failed else None,
                artifacts=artifacts,
                postgres=cat.PostgresInfo(server_version="15.8", database=db),
            )
            prefix = root / cat.backup_prefix("postgresql", "logical", db, backup_id)
            prefix.mkdir(parents=True, exist_ok=True)
            for art in artifacts:
                (prefix / art.name).write_bytes(b"x")
            (prefix / cat.MANIFEST_NAME).write_bytes(manifest.to_json())
            written += 1
    template, how = wal_template(wal_layout_sample)
    first_segno = 0x100
    made_dirs: set[Path] = set()
    for i in range(n_wal):
        seg = segment_name(1, first_segno + i)
        if template:
            path = root / template.format(segment=seg)
        else:
            from seawall.catalog.wal_layout import wal_key

            path = root / wal_key("main", seg, hashlib.sha256(seg.encode()).hexdigest(), ".zst.age")
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        with open(path, "wb"):
            pass
    return {"backups": written, "wal_files": n_wal, "wal_template": template, "wal_layout": how}
