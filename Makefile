# The two commands README.md starts with. Both work on a fresh Debian 12 machine.
.PHONY: demo test lint unit mutants setup setup-test

demo:  ## set up, then run seawall's main job on a throwaway local PostgreSQL
	scripts/setup.sh
	.venv/bin/seawall demo

test:  ## set up, then run linters and the whole test suite
	scripts/setup.sh --test
	$(MAKE) lint
	.venv/bin/python -m pytest -n 2 --dist loadfile -q -p no:cacheprovider

lint:
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

unit:
	.venv/bin/python -m pytest -q tests/unit

mutants:  ## before a release: does the suite notice a deliberate bug in each invariant? (slow, not in CI)
	.venv/bin/python scripts/mutants.py
