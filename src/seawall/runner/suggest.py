"""What to suggest for a command that does not exist: a close spelling, a synonym, or nothing.

Click's default (``difflib`` with a 0.6 ratio) answered ``seawall expire``
with ``exporter``: similar letters, opposite meaning, and an operator who
trusts the hint starts a metrics server instead of pruning. Here a hint is
either a word operators of other backup tools use for one of our commands
(``expire``, ``rotate`` → ``prune``), or a spelling at most one or two edits
away (a typo), or a command in a group (``seawall list`` → ``postgres list``,
``qdrant list``). Otherwise nothing: no hint beats a wrong one.
"""

from __future__ import annotations

#: Words from other tools (pgBackRest, WAL-G, restic, Barman) → our command.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "expire": ("prune",),
    "rotate": ("prune",),
    "cleanup": ("prune",),
    "retention": ("prune",),
    "delete": ("forget", "prune"),
    "remove": ("forget", "prune"),
    "rm": ("forget", "prune"),
    "ls": ("list",),
    "show": ("list", "info"),
    "status": ("info", "list"),
    "dump": ("backup",),
    "snapshot": ("backup",),
    "check": ("verify",),
    "metrics": ("exporter",),
    "serve": ("exporter",),
    "archive-push": ("wal-push",),
    "archive-get": ("wal-fetch",),
    "recover": ("restore", "pitr-restore"),
}


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent swaps)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _leaf(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def suggest(typo: str, names: list[str]) -> str | None:
    """A hint like ``'prune'`` or ``'postgres list', 'qdrant list'``, or None.

    ``names`` are the command paths reachable from where the typo was typed
    (``prune``, ``postgres list`` …); a path's last word is what is compared.
    """
    word = typo.lower()
    if word.startswith("-"):
        return None
    found: list[str] = []
    for target in SYNONYMS.get(word, ()):
        found.extend(n for n in names if _leaf(n) == target and n not in found)
        if found:
            break
    if not found:
        limit = 1 if len(word) <= 4 else 2
        scored = sorted((distance(word, _leaf(n)), n) for n in names)
        best = scored[0][0] if scored else limit + 1
        if best <= limit:
            found = [n for d, n in scored if d == best]
    if not found and len(word) >= 3:
        found = [n for n in names if _leaf(n).startswith(word)]
    if not found:
        return None
    top = [n for n in found if " " not in n]  # a command of this group first
    return ", ".join(repr(n) for n in (top or found)[:3])
