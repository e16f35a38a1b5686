"""Retention: which backups and WAL files to keep, and why (pure, no I/O).

``apply_policy`` decides GFS retention for backup series;
``apply_wal_policy`` plugs a cluster's WAL archive into that decision.
See docs/retention.md.
"""

from __future__ import annotations

from seawall.retention.policy import (
    KINDS,
    Decision,
    EmptyPolicyError,
    Entry,
    InvalidEntryError,
    InvalidPolicyError,
    Kind,
    Policy,
    PolicySource,
    Verdict,
    apply_policy,
    counts_as_successful,
)
from seawall.retention.wal import BaseBackup, WalDecision, WalVerdict, apply_wal_policy
from seawall.retention.walnames import (
    DEFAULT_WAL_SEGMENT_SIZE,
    WalFile,
    lsn_to_segment_name,
    next_segment_name,
    parse_lsn,
    parse_wal_name,
    segment_name,
    segment_range,
    segno_of,
)

__all__ = [
    "DEFAULT_WAL_SEGMENT_SIZE",
    "KINDS",
    "BaseBackup",
    "Decision",
    "EmptyPolicyError",
    "Entry",
    "InvalidEntryError",
    "InvalidPolicyError",
    "Kind",
    "Policy",
    "PolicySource",
    "Verdict",
    "WalDecision",
    "WalFile",
    "WalVerdict",
    "apply_policy",
    "apply_wal_policy",
    "counts_as_successful",
    "lsn_to_segment_name",
    "next_segment_name",
    "parse_lsn",
    "parse_wal_name",
    "segment_name",
    "segment_range",
    "segno_of",
]
