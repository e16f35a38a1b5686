"""The ``archive.json`` record: which cluster a WAL archive belongs to.

The first push of a segment writes it; every later push compares the
segment's header with it, so WAL of another cluster (a copy-pasted
archive_command, a rebuilt primary with a new system identifier) is refused
instead of silently mixing two histories under one name. The schema is
here; reading and writing it through the repository is
:mod:`seawall.postgres.wal.archive_info`, and the lean wal-push confirms the
two fields it needs with :func:`seawall.walcore.layout.info_field`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ArchiveInfo:
    system_identifier: str
    wal_segment_size: int
    cluster: str
    created_at: str = ""

    def to_json(self) -> bytes:
        data = {
            "format_version": FORMAT_VERSION,
            "cluster": self.cluster,
            "system_identifier": self.system_identifier,
            "wal_segment_size": self.wal_segment_size,
            "created_at": self.created_at or datetime.now(UTC).isoformat(),
        }
        return (json.dumps(data, indent=2) + "\n").encode()


def parse_archive_info(raw: bytes, cluster: str) -> ArchiveInfo:
    """The record in ``raw``; ValueError, KeyError or TypeError if it is not one.

    ``cluster``: the name to record when the file does not carry one.
    """
    data = json.loads(raw)
    return ArchiveInfo(
        system_identifier=str(data["system_identifier"]),
        wal_segment_size=int(data["wal_segment_size"]),
        cluster=str(data.get("cluster", cluster)),
        created_at=str(data.get("created_at", "")),
    )
