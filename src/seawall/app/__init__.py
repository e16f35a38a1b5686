"""The application layer: what a command does, above the engines.

The engines (:mod:`seawall.postgres`, :mod:`seawall.qdrant`) store a backup
and return its manifest; this layer runs what a command does around them:
the verification and retention right after a backup (:mod:`.backup`),
retention itself (:mod:`.prune`), the demo (:mod:`.demo`), mirror sync
(:mod:`.sync`) and the restore
drill (:mod:`.drill`). The runner's commands call it; nothing below imports
it (import-linter ``layers`` contract in pyproject.toml, docs/design.md).
"""
