"""Lazy re-exports for package ``__init__`` modules.

``seawall.catalog`` re-exports pydantic models and ``seawall.retention`` the
policy (zoneinfo); many callers need only one leaf module (``catalog.wal_layout``,
``retention.wal``). Resolving the re-exports on first attribute access keeps
``import seawall.catalog.wal_layout`` from importing pydantic.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: name -> leaf module."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
