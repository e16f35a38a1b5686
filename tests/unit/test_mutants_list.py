"""docs/mutants.toml and docs/design.md agree, and every mutant names real files.

Whether each patch still *applies* is left to ``make mutants`` (it reports
NO-PATCH): code under a mutant changes often, and the release check is
where the list is brought up to date.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutants_script", ROOT / "scripts/mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building the class
    spec.loader.exec_module(module)
    return module


def test_every_mutant_is_listed_under_its_invariant_and_names_real_files() -> None:
    mutants = _script().load(ROOT / "docs/mutants.toml")
    assert len(mutants) >= 14
    design = (ROOT / "docs/design.md").read_text()
    table = design[design.index("## Mutants") :]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    listed = {i for row in rows for i in re.findall(r"`([a-z0-9-]+)`", row)}
    for m in mutants:
        assert m.id in listed, f"{m.id} is not in the table of docs/design.md"
        row = next(line for line in rows if f"`{m.id}`" in line)
        assert row.startswith(f"| {m.invariant} "), f"{m.id}: listed under another invariant"
        assert (ROOT / m.file).is_file(), m.file
        assert m.search and m.search != m.replace
        for test in m.tests:
            assert (ROOT / test.split("::")[0]).is_file(), test
    assert listed == {m.id for m in mutants}, "the table lists mutants that do not exist"
