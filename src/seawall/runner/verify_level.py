"""How the verification level is worded for people (backup and verify commands).

One wording everywhere, so an operator reading a cron mail sees at once that
a ``stored`` verification did not decrypt anything and where the stronger
levels run.
"""

from __future__ import annotations

from seawall.catalog.models import Verification

_NOTES = {
    "stored": "stored level: bytes, age header and recorded structure checked without the "
    "identity; decrypt with `verify` or restore with `verify --deep` where the identity lives",
    "decoded": "decoded level: decrypted, decompressed and its structure read",
    "deep": "deep: restored and compared",
}


def level_note(v: Verification) -> str:
    """``stored level: …`` / ``decoded level: …`` / ``deep: …``."""
    return _NOTES[v.effective_level]
