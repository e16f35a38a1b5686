"""``wal-check`` as a use case: the archive plus the base backups' manifests."""

from __future__ import annotations

from datetime import datetime

from seawall.context import Context
from seawall.postgres.wal.archive import (
    BaseRef,
    WindowReport,
    analyse,
    list_archive,
    load_histories,
)
from seawall.retention.walnames import parse_lsn


def check_archive(ctx: Context, now: datetime) -> WindowReport:
    from seawall.postgres.physical.basebackup import base_manifests
    from seawall.postgres.wal.archive_info import read_archive_info

    cluster = ctx.settings.pg_cluster_name
    info = read_archive_info(ctx.storage, cluster)
    seg_size = info.wal_segment_size if info else 16 * 1024 * 1024
    listing = list_archive(ctx.storage, cluster, seg_size)
    try:
        load_histories(listing, ctx.storage, ctx.keys)
    except Exception as exc:
        listing.errors.append(f"timeline history not readable: {exc}")
    refs = []
    for m in base_manifests(ctx, cluster):
        pg = m.postgres
        if pg and pg.start_wal and pg.stop_wal and pg.stop_lsn and pg.timeline:
            refs.append(
                BaseRef(
                    m.id, pg.timeline, pg.start_wal, pg.stop_wal, parse_lsn(pg.stop_lsn), m.time
                )
            )
    return analyse(listing, cluster, refs, now)
