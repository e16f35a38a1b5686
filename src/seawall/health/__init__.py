"""Health: ``seawall status`` ("are we safe?") and ``seawall check`` (is the setup right?).

Both sit above the engines and the catalog and below the runner: status
reads the catalog, the WAL archive and the drill records (never a server);
check talks to PostgreSQL and writes probes into the repository. Neither
changes a backup. See docs/status-and-check.md.
"""
