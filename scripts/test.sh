#!/usr/bin/env bash
# The whole test suite: set up, then lint, type-check, check the import contracts (lint-imports) and
# run every test (unit, integration, e2e).
# pytest runs on DELIVERY_TEST_WORKERS workers (2; 0 runs it in this process), each with its own sandbox.
# Extra arguments go to pytest. Fails when any check fails and when pytest collects no test.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

scripts/setup.sh

printf '\n== ruff\n'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
printf '\n== mypy\n'
.venv/bin/mypy
printf '\n== import contracts\n'
.venv/bin/lint-imports
printf '\n== pytest\n'
set +e
.venv/bin/pytest -n "${DELIVERY_TEST_WORKERS:-2}" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
echo "test suite took $(( $(date +%s) - started ))s"
exit "$status"
