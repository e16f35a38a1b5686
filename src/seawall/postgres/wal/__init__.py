"""Continuous WAL archiving: push, fetch, and the archive's continuity.

Modules here that the ``wal-push`` / ``wal-fetch`` hot path imports
(envconfig, header, push, fetch) use only the standard library, zstandard
and pyrage: no pydantic, no Typer, no psycopg.
"""
