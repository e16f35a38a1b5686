"""``seawall drill``: prove the backups restore, measure RTO/RPO, record it.

The use case lives here (:mod:`seawall.drill.run`); each engine drills its
own targets (:mod:`seawall.postgres.drill`, :mod:`seawall.qdrant.drill`).
"""
