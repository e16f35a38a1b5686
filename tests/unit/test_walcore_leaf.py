"""seawall.walcore stays a leaf: the standard library only, and light where the hot path is.

The import-linter contract in pyproject.toml forbids the seawall packages
that exist today; this test also catches one added later (or a third-party
package), by reading every ``import`` in walcore. The lean modules, which
wal-push/wal-fetch import once per segment, must not even import ``re``,
``dataclasses``, ``typing`` or ``json`` at module level.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import seawall.walcore

PACKAGE = Path(seawall.walcore.__file__).parent
LEAN = ("layout", "header", "env")


def _imports(path: Path) -> list[str]:
    """Top-level module names imported anywhere in ``path`` (relative imports as seawall)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append("seawall.walcore" if node.level else str(node.module))
    return found


def test_walcore_imports_only_the_standard_library() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "seawall":
                assert name.startswith(("seawall.walcore", "seawall.errors")), (path.name, name)
            else:
                assert top in sys.stdlib_module_names or top == "__future__", (path.name, name)


def test_lean_modules_load_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        f"for m in {LEAN!r}: __import__('seawall.walcore.' + m)\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    heavy = {
        "re",
        "dataclasses",
        "typing",
        "json",
        "struct",
        "tomllib",
        "pathlib",
        "seawall.errors",
    }
    assert loaded & heavy == set()
    assert {m for m in loaded if m.startswith("seawall")} == {
        "seawall",
        "seawall.walcore",
        *(f"seawall.walcore.{m}" for m in LEAN),
    }
