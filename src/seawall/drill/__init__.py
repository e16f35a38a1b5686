"""``seawall drill``: prove the backups restore, measure RTO/RPO, record it.

This package holds what the engines share below them: the drill's data
model (:mod:`.model`) and its records in the catalog (:mod:`.records`).
Each engine drills its own targets (:mod:`seawall.postgres.drill`,
:mod:`seawall.qdrant.drill`); the use case that runs them in turn is in the
application layer (:mod:`seawall.app.drill`).
"""
