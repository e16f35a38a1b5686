"""Which ``SEAWALL_*`` names seawall reads, and the ones it does not (typos).

Why apart from :mod:`seawall.settings`: the names are derived from the
Settings model but are no part of it; keeping them here holds the model's
module small. A ``SEAWALL_*`` variable that is no option is reported with
the closest valid name instead of being silently ignored.
"""

from __future__ import annotations

import difflib
import os

#: SEAWALL_* variables read outside Settings (entry points, the exporter's
#: options, tests and benchmarks): not typos.
OTHER_SEAWALL_VARS = frozenset(
    {
        "SEAWALL_CONFIG",
        "SEAWALL_EXPORTER_LISTEN",
        "SEAWALL_WEB_CONFIG_FILE",
        "SEAWALL_WAL_FETCH_VERBOSE",
    }
)
OTHER_SEAWALL_PREFIXES = ("SEAWALL_TEST_", "SEAWALL_BENCH_")


def known_env_names() -> set[str]:
    """Every SEAWALL_* name seawall reads."""
    from pydantic import AliasChoices

    from seawall.settings import SECRET_FILE_VARS, Settings  # the model names them

    names = set(OTHER_SEAWALL_VARS)
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str) and c.isupper())
    for env_names in SECRET_FILE_VARS.values():
        names.update(env_names)
    return {n for n in names if n.startswith("SEAWALL_")}


def unknown_env_vars(environ: dict[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``SEAWALL_*`` variables that are no option, each with the closest valid name."""
    env = os.environ if environ is None else environ
    known = known_env_names()
    found = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith("SEAWALL_") or upper in known:
            continue
        if upper.startswith(OTHER_SEAWALL_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.75)
        found.append((name, close[0] if close else None))
    return found
