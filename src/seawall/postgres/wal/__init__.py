"""Continuous WAL archiving: push, fetch, and the archive's continuity.

The ``wal-push`` / ``wal-fetch`` hot path (``fastpush``, ``fastfetch`` and
what they share: ``lean``, ``leanstream``, ``claim``, ``fastage``, the
read-ahead client ``readahead``) uses only the standard library, zstandard
and pyrage, and takes every WAL fact from :mod:`seawall.walcore`; the
general path (``push``, ``fetch``, ``envconfig``) adds the pipeline and the
storage layer, still without pydantic, Typer or psycopg.
"""
