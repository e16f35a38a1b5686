"""Qdrant: snapshot backups over the REST API, verification and restore.

Modules: ``client`` (HTTP, errors), ``snapshots`` (create / download /
delete), ``archive`` (structure of a snapshot tar), ``backup`` (the use
case), ``cluster`` (shard snapshots from Active replicas), ``deep``
(qdrant-edge loading), ``restore``, ``full_storage``.
"""
