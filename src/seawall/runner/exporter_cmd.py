"""``seawall exporter``: the read-only metrics sidecar.

Thin: builds the collector's inputs from settings (the repository through
the one storage factory, the mirrors, per-series retention policies for the
tier counts) and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seawall.errors import ConfigError
from seawall.runner.common import command, settings

if TYPE_CHECKING:
    from seawall.settings import Settings

DEFAULT_LISTEN = "0.0.0.0:9877"


@command
def exporter(
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            envvar="SEAWALL_EXPORTER_LISTEN",
            help="Address to serve /metrics and /healthz on (HOST:PORT).",
        ),
    ] = DEFAULT_LISTEN,
    web_config_file: Annotated[
        Path | None,
        typer.Option(
            "--web.config.file",
            envvar="SEAWALL_WEB_CONFIG_FILE",
            help="Prometheus exporter-toolkit web config (TLS, basic auth); re-read on change.",
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Re-parse every manifest and rescan the WAL archive at each scrape "
            "(for benchmarks; slow on large catalogs).",
        ),
    ] = False,
    rescan_interval: Annotated[
        float,
        typer.Option(
            "--rescan-interval",
            min=1.0,
            help="Seconds between full rescans of the WAL archive and full stat checks of "
            "the catalog (a fallback; changes are seen at once through file system events), "
            "and between full listings of object storage (in between, the WAL segments "
            "already seen are not listed again).",
        ),
    ] = 300.0,
    refresh_interval: Annotated[
        float,
        typer.Option(
            "--refresh-interval",
            min=1.0,
            help="Seconds between listings of repositories that are listed rather than "
            "watched: object storage and every mirror (for reachability, bytes and mirror lag).",
        ),
    ] = 60.0,
) -> None:
    """Serve backup health as Prometheus metrics (read-only; see docs/exporter.md)."""
    from seawall.context import Context
    from seawall.exporter.catalog_cache import CatalogCache
    from seawall.exporter.collector import SeawallCollector, make_registry
    from seawall.exporter.repositories import Repositories
    from seawall.exporter.server import ExporterServer, parse_listen
    from seawall.exporter.wal_watch import WalWatcher
    from seawall.exporter.webconfig import WebConfigLoader
    from seawall.log import get_logger
    from seawall.retention import Policy
    from seawall.storage.factory import open_storage

    s = settings()
    ctx = Context(s)
    storage = ctx.storage
    local = storage.local_volume() is not None
    if local:
        ctx.require_repository()
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    web = WebConfigLoader(web_config_file)

    def policy_for(engine: str, kind: str, series: str) -> Policy | None:
        try:
            return ctx.retention_policy(engine, kind, series)
        except ConfigError:
            return None

    mirrors = [(m, open_storage(m, what="MIRRORS")) for m in _mirror_locations(s)]
    # the primary alone (not wrapped with its mirrors or MAX_RATE, which only
    # matter to writes): its own listing is what the view needs, incremental on S3
    primary = open_storage(s.repository) if mirrors or s.max_rate else storage
    repositories = Repositories.of(
        (s.repository, primary),
        mirrors,
        interval=0.0 if no_cache else refresh_interval,
        rescan_interval=0.0 if no_cache else rescan_interval,
    )
    catalog: CatalogCache | None = None
    wal: WalWatcher | None = None
    if local:  # watched through the local volume; object storage is listed instead
        catalog = CatalogCache(
            storage, enabled=not no_cache, watch=not no_cache, full_check_interval=rescan_interval
        )
        wal = WalWatcher(storage, rescan_interval=rescan_interval, watch=not no_cache)
    collector = SeawallCollector(
        storage,
        catalog=catalog,
        wal=wal,
        policy_for=policy_for,
        memo=not no_cache,
        repositories=repositories,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # watch first, then read everything once, so that Prometheus' first
    # scrape is served from a warm cache instead of parsing the whole catalog
    log = get_logger()
    t0 = time.monotonic()
    if wal is not None:
        wal.start()
    if catalog is not None:
        catalog.start()
    if not no_cache:  # --no-cache: every scrape lists (refresh_due with interval 0)
        repositories.start()
    try:
        t1 = time.monotonic()
        collector.collect()
        log.info(
            "WAL archive scanned and watches set in %.2fs, catalog read in %.2fs",
            t1 - t0,
            time.monotonic() - t1,
        )
        try:
            server = ExporterServer(address, make_registry(collector), web)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {listen} ({exc.strerror}); choose another --listen address"
            ) from None
        server.start_background()
        log.info(
            "seawall exporter listening on %s://%s:%d/metrics (repository %s%s%s)",
            server.scheme,
            address[0],
            server.port,
            storage.describe(),
            f", {len(mirrors)} mirror(s)" if mirrors else "",
            ", no cache" if no_cache else "",
        )
        try:
            stop.wait()
        finally:
            server.stop()
    finally:
        repositories.stop()
        if wal is not None:
            wal.stop()
        if catalog is not None:
            catalog.stop()


def _mirror_locations(s: Settings) -> list[str]:
    """The MIRRORS locations, as the operator wrote them (validated by the settings)."""
    return list(s.mirrors)
