"""Retention: which backups and WAL files to keep, and why (pure, no I/O).

``apply_policy`` decides GFS retention for backup series;
``apply_wal_policy`` plugs a cluster's WAL archive into that decision (WAL
names and LSN arithmetic are :mod:`seawall.walcore`'s).
See docs/retention.md. Re-exports resolve lazily (see seawall._lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall._lazy import lazy_exports

if TYPE_CHECKING:
    from seawall.retention.policy import (
        KINDS as KINDS,
        Decision as Decision,
        EmptyPolicyError as EmptyPolicyError,
        Entry as Entry,
        InvalidEntryError as InvalidEntryError,
        InvalidPolicyError as InvalidPolicyError,
        Kind as Kind,
        Policy as Policy,
        PolicySource as PolicySource,
        Verdict as Verdict,
        apply_policy as apply_policy,
        counts_as_successful as counts_as_successful,
    )
    from seawall.retention.wal import (
        BaseBackup as BaseBackup,
        WalDecision as WalDecision,
        WalVerdict as WalVerdict,
        apply_wal_policy as apply_wal_policy,
    )

#: Re-exported name -> leaf module, imported on first use (see seawall._lazy).
_EXPORTS = {
    "KINDS": "policy",
    "Decision": "policy",
    "EmptyPolicyError": "policy",
    "Entry": "policy",
    "InvalidEntryError": "policy",
    "InvalidPolicyError": "policy",
    "Kind": "policy",
    "Policy": "policy",
    "PolicySource": "policy",
    "Verdict": "policy",
    "apply_policy": "policy",
    "counts_as_successful": "policy",
    "BaseBackup": "wal",
    "WalDecision": "wal",
    "WalVerdict": "wal",
    "apply_wal_policy": "wal",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
