"""The exporter sidecar: backup health as Prometheus metrics, read-only."""
