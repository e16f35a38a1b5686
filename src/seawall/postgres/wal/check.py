"""``wal-check`` as a use case: the archive plus the base backups' manifests."""

from __future__ import annotations

from datetime import datetime

from seawall.context import Context
from seawall.postgres.wal.archive import (
    ArchiveListing,
    BaseRef,
    WindowReport,
    analyse,
    base_end_time,
    list_archive,
    load_histories,
)
from seawall.walcore.lsn import parse_lsn


def read_listing(ctx: Context) -> ArchiveListing:
    """The archive of PG_CLUSTER_NAME, timeline histories decoded where the keys allow."""
    from seawall.postgres.wal.archive_info import read_archive_info

    cluster = ctx.settings.pg_cluster_name
    info = read_archive_info(ctx.storage, cluster)
    seg_size = info.wal_segment_size if info else 16 * 1024 * 1024
    listing = list_archive(ctx.storage, cluster, seg_size)
    try:
        load_histories(listing, ctx.storage, ctx.keys)
    except Exception as exc:
        listing.errors.append(f"timeline history not readable: {exc}")
    return listing


def check_archive(
    ctx: Context, now: datetime, listing: ArchiveListing | None = None
) -> WindowReport:
    """``listing`` (from :func:`read_listing`) lets a caller that also needs the
    files themselves (``seawall status`` sums their sizes) list the archive once."""
    from seawall.postgres.physical.basebackup import base_manifests

    cluster = ctx.settings.pg_cluster_name
    if listing is None:
        listing = read_listing(ctx)
    refs = []
    for m in base_manifests(ctx, cluster):
        pg = m.postgres
        if pg and pg.start_wal and pg.stop_wal and pg.stop_lsn and pg.timeline:
            refs.append(
                BaseRef(
                    m.id,
                    pg.timeline,
                    pg.start_wal,
                    pg.stop_wal,
                    parse_lsn(pg.stop_lsn),
                    base_end_time(m, listing),
                )
            )
    return analyse(listing, cluster, refs, now)
