"""The ``QDRANT_URL`` switch keeps working, although no real Qdrant runs in CI.

docs/qdrant.md tells users how to run the suite against a real Qdrant. The
tests that only run in that mode (``test_real_qdrant_smoke``) and the
remote handle behind the fixtures would rot unseen, so this runs them in a
child pytest whose ``QDRANT_URL`` points at a Qdrant test server started
here, posing as a real one (with an API key, as the docs' example).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.qdrant_server import QdrantTestServer

KEY = "sw-switch-key-5d1e"  # distinctive: the tests grep every output for it
SELECTED = [
    "tests/integration/qdrant/test_qdrant_backup.py::test_real_qdrant_smoke",
    "tests/e2e/test_qdrant_cli.py::test_cli_api_key_never_in_output_logs_or_manifests",
]


def test_suite_runs_against_qdrant_url() -> None:
    with QdrantTestServer(api_key=KEY) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QDRANT_")}
        if "QDRANT_OPENAPI_SPEC" in os.environ:
            env["QDRANT_OPENAPI_SPEC"] = os.environ["QDRANT_OPENAPI_SPEC"]
        env.update(QDRANT_URL=server.url, QDRANT_API_KEY=KEY)
        res = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *SELECTED],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        assert "2 passed" in res.stdout and "skipped" not in res.stdout, res.stdout[-2000:]
        # the remote handle cleaned up after itself (also what seawall restored)
        assert server.collection_names() == []
