#!/usr/bin/env bash
# The whole test suite: set up, then lint, type-check, check the import contracts (lint-imports) and
# run every test (unit, integration, e2e) on the default Kubernetes (or DELIVERY_KUBERNETES's), then
# the `matrix` subset on every other release of sandbox/versions.py.
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
# The other releases' binaries (the upgrade test's first) build in the background at the lowest
# priority while the suite runs on the default, whose binaries setup.sh built: the suite waits on
# its controllers far more than it computes, and a test needing a release still building waits for
# that build (sandbox.build locks each one).
build_log=$(mktemp)
nice -n 19 .venv/bin/python -m sandbox build --all >"$build_log" 2>&1 &
build_pid=$!
trap 'kill "$build_pid" 2>/dev/null || true' EXIT
printf '\n== pytest (Kubernetes %s)\n' "$(.venv/bin/python -m sandbox.versions selected)"
set +e
.venv/bin/pytest -n "${DELIVERY_TEST_WORKERS:-2}" "$@"
status=$?
set -e
printf '\n== the other releases of the matrix, built meanwhile\n'
if ! wait "$build_pid"; then
  cat "$build_log" >&2
  exit 1
fi
grep '^built' "$build_log" || echo "(all cached)"
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
# The `matrix` subset (each API the controller touches) on every other release, a sandbox each.
for version in $(.venv/bin/python -m sandbox.versions others); do
  printf '\n== pytest -m matrix (Kubernetes %s)\n' "$version"
  set +e
  DELIVERY_KUBERNETES=$version .venv/bin/pytest -n "${DELIVERY_TEST_WORKERS:-2}" -m matrix tests/integration
  matrix_status=$?
  set -e
  if [ "$matrix_status" -ne 0 ]; then
    echo "the matrix subset failed on Kubernetes $version (exit $matrix_status; 5: no test collected)" >&2
    status=1
  fi
done
echo "test suite took $(( $(date +%s) - started ))s"
exit "$status"
