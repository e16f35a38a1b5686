#!/usr/bin/env python3
"""A curated mutation check: does the suite notice a plausible bug in each invariant?

Each mutant in ``docs/mutants.toml`` is one small textual patch (an exact
search string and its replacement in one file) that breaks one invariant of
docs/design.md, plus the tests that must notice it. For each mutant this
script patches a *copy* of the tree (never the working tree), runs those
tests and prints:

* ``killed``    the tests failed: the invariant is guarded;
* ``SURVIVED``  the tests passed with the bug in: a missing test;
* ``NO-PATCH``  the search string is not in the file exactly once (the code
  changed): update the mutant, it tests nothing as it stands;
* ``ERROR``     pytest could not run the tests (collection error, no such
  test, timeout): look at the output it prints.

Before the mutants, each distinct test set runs once unpatched (skip with
``--no-baseline``): a test that fails anyway would count every mutant as
killed.

Why a copy with its own tiny venv: tests start ``.venv/bin/seawall`` as a
subprocess (archive_command runs it as the postgres user, without our
environment), and the project's venv imports ``src`` of *this* checkout.
The copy gets a venv without packages of its own whose ``.pth`` files put
the copy's ``src`` first and then the project venv's site-packages, and
console scripts whose ``#!`` points at that venv.

Slow on purpose (real PostgreSQL, real age): run it before a release, or
after changing code that an invariant names (docs/design.md, "Mutants").
Standard library only. ``make mutants`` runs them all; ``--only ID`` some.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIST = ROOT / "docs" / "mutants.toml"


@dataclass(frozen=True)
class Mutant:
    id: str
    invariant: str
    file: str
    search: str
    replace: str
    tests: tuple[str, ...]
    why: str


def load(path: Path) -> list[Mutant]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for item in data["mutant"]:
        out.append(
            Mutant(
                id=item["id"],
                invariant=str(item["invariant"]),
                file=item["file"],
                search=item["search"],
                replace=item["replace"],
                tests=tuple(item["tests"]),
                why=item.get("why", ""),
            )
        )
    ids = [m.id for m in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SystemExit(f"mutants: duplicate ids in {path}: {sorted(dupes)}")
    return out


def tracked_files(root: Path) -> list[str]:
    """The working tree as git sees it (tracked + untracked, not ignored)."""
    res = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    return [p for p in res.stdout.decode().split("\0") if p]


def make_copy(root: Path, dest: Path) -> None:
    for rel in tracked_files(root):
        src = root / rel
        if not src.is_file():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def make_venv(root: Path, dest: Path) -> Path:
    """A venv in ``dest/.venv`` importing ``dest/src`` first; returns its python."""
    base_venv = root / ".venv"
    cfg = dict(
        line.split(" = ", 1)
        for line in (base_venv / "pyvenv.cfg").read_text().splitlines()
        if " = " in line
    )
    base_python = cfg.get("executable") or sys.executable
    venv = dest / ".venv"
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    (base_site,) = (base_venv / "lib").glob("python3*/site-packages")
    (site_packages / "00_mutant_src.pth").write_text(f"{dest / 'src'}\n")
    (site_packages / "zz_project_venv.pth").write_text(
        f"import site; site.addsitedir({str(base_site)!r})\n"
    )
    old_shebang = f"#!{base_venv / 'bin' / 'python'}"
    for script in (base_venv / "bin").iterdir():
        target = venv / "bin" / script.name
        if target.exists() or not script.is_file():
            continue
        try:
            text = script.read_text()
        except UnicodeDecodeError:
            continue
        if text.startswith(old_shebang):
            target.write_text(f"#!{venv / 'bin' / 'python'}" + text[len(old_shebang) :])
            target.chmod(0o755)
    return venv / "bin" / "python"


def apply(copy: Path, mutant: Mutant) -> str | None:
    """Patch the copy; the original text to restore, or None if it did not apply."""
    path = copy / mutant.file
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if text.count(mutant.search) != 1:
        return None
    path.write_text(text.replace(mutant.search, mutant.replace), encoding="utf-8")
    return text


def run_tests(python: Path, copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, str]:
    """(outcome, tail of output): outcome is passed / failed / error."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [str(python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        res = subprocess.run(
            cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "error", f"timed out after {timeout:.0f}s"
    tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-15:])
    if res.returncode == 0:
        return "passed", tail
    if res.returncode == 1:  # tests ran and some failed
        return "failed", tail
    return "error", tail  # 2 interrupted, 3 internal, 4 usage, 5 no tests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list-file", type=Path, default=DEFAULT_LIST)
    parser.add_argument("--only", action="append", default=[], help="mutant id (repeatable)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unpatched runs")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per test run")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--verbose", "-v", action="store_true", help="print pytest's tail")
    args = parser.parse_args(argv)

    mutants = load(args.list_file)
    if args.only:
        unknown = set(args.only) - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant ids: {sorted(unknown)}")
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.id:36} invariant {m.invariant:4} {m.file}")
        return 0

    work = Path(tempfile.mkdtemp(prefix="seawall-mutants-", dir="/tmp"))
    work.chmod(0o755)  # archive_command runs the copy's seawall as the postgres user
    results: list[tuple[Mutant, str, float]] = []
    try:
        make_copy(ROOT, work)
        python = make_venv(ROOT, work)
        print(f"mutants: {len(mutants)} in a copy of the tree at {work}", flush=True)
        if not args.no_baseline:
            for tests in dict.fromkeys(m.tests for m in mutants):
                outcome, tail = run_tests(python, work, tests, args.timeout)
                if outcome != "passed":
                    print(f"baseline {outcome} (unpatched) for {' '.join(tests)}:\n{tail}")
                    return 2
            print("baseline: every test set passes unpatched", flush=True)
        for m in mutants:
            start = time.monotonic()
            original = apply(work, m)
            if original is None:
                verdict, tail = "NO-PATCH", f"search string not found exactly once in {m.file}"
            else:
                try:
                    outcome, tail = run_tests(python, work, m.tests, args.timeout)
                finally:
                    (work / m.file).write_text(original, encoding="utf-8")
                verdict = {"failed": "killed", "passed": "SURVIVED", "error": "ERROR"}[outcome]
            took = time.monotonic() - start
            results.append((m, verdict, took))
            print(f"{verdict:9} {m.id:36} invariant {m.invariant:4} {took:6.0f}s", flush=True)
            if args.verbose or verdict in ("ERROR", "NO-PATCH"):
                print("    " + tail.replace("\n", "\n    "))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nverdict   mutant                               invariant")
    for m, verdict, _ in results:
        print(f"{verdict:9} {m.id:36} {m.invariant}")
    bad = [m.id for m, verdict, _ in results if verdict != "killed"]
    print(f"\n{len(results) - len(bad)}/{len(results)} killed" + (f"; not: {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
