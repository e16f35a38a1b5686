"""The exporter sidecar: backup health as Prometheus metrics, read-only.

See docs/exporter.md. Modules: catalog_cache (manifests, cached on stat),
wal_watch (the WAL archive via watchdog), collector (metric families),
webconfig (exporter-toolkit web config: TLS and basic auth), server (HTTP),
metrics_def / metrics_doc (the metric table and docs/metrics.md).
"""
