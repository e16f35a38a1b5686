"""Thin CLI commands: parse, call a use case, print. One command per module.

This package's ``__init__`` stays empty on purpose: ``wal_fast`` lives here and
must not pull in Typer.
"""
