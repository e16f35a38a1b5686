"""Everything seawall knows about PostgreSQL WAL, in one stdlib-only leaf package.

Why one home: the lean ``wal-push``/``wal-fetch`` (once per 16 MiB segment),
the general push and fetch, retention, prune, the catalog and the exporter
all need the same facts: what a segment name means, LSN arithmetic, where
an archived file goes and what its name says, the segment header, the
``archive.json`` record, and the WAL options in the environment. Declared
once here, none of them can drift apart.

Modules (the lean ones import nothing beyond ``os``, so the hot path may
use them; the others use ``re``/``dataclasses``/``json``):

* :mod:`~seawall.walcore.layout` (lean): archive layout constants and
  name checks.
* :mod:`~seawall.walcore.header` (lean): the segment's long page header.
* :mod:`~seawall.walcore.env` (lean): the one light reader of the WAL
  options from the environment (``settings.py`` is tested against it).
* :mod:`~seawall.walcore.names`: WAL file names (segments, ``.history``,
  ``.partial``, ``.backup``), next/previous, ranges.
* :mod:`~seawall.walcore.lsn`: LSN arithmetic.
* :mod:`~seawall.walcore.archived`: parsing an archived file's key.
* :mod:`~seawall.walcore.archive_info`: the ``archive.json`` record.

Nothing here imports from ``seawall`` (import-linter contract in
pyproject.toml), nor pydantic: this ``__init__`` stays empty so that
importing one lean module costs only that module.
"""
