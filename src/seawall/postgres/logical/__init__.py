"""Logical PostgreSQL backups: ``pg_dump -Fc`` archives plus globals.

Use cases (one module each): :mod:`backup`, :mod:`verify`, :mod:`restore`,
:mod:`listing`; :mod:`stats` takes content statistics in the dump's
snapshot; :mod:`select` resolves ``BACKUP|latest|PATH``; :mod:`legacy`
reads the operators' old plain-SQL dumps.
"""
