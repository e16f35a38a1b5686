"""``wal-check`` as a use case: the archive plus the base backups' manifests."""

from __future__ import annotations

from datetime import datetime

from seawall.context import Context
from seawall.postgres.wal.archive import (
    ArchiveListing,
    WindowReport,
    analyse,
    list_archive,
    load_histories,
)


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
    from seawall.postgres.physical.pitr_plan import base_ref

    cluster = ctx.settings.pg_cluster_name
    if listing is None:
        listing = read_listing(ctx)
    refs = [r for m in base_manifests(ctx, cluster) if (r := base_ref(m, listing))]
    return analyse(listing, cluster, refs, now)
