#!/usr/bin/env bash
# Install everything the project needs on a fresh machine; safe to run again (each step is skipped
# when already done). Debian's prometheus and chromium, a Python venv with the project, the control-plane binaries.
# `--python`: the Python environment only (what `make docs` needs).
set -euo pipefail
cd "$(dirname "$0")/.."
python_only=false
[ "${1:-}" = "--python" ] && python_only=true

say() { printf '\n== %s\n' "$*"; }

if ! $python_only && ! command -v prometheus >/dev/null 2>&1; then
  say "installing Debian's prometheus"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The dashboard's browser tests drive Debian's chromium with Playwright's Python API (the system
# browser: `playwright install`'s download of its own browser fails on a closed network).
if ! $python_only && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium (the dashboard's browser tests)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt "$stamp" ]; then
  say "creating the Python environment (.venv)"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

$python_only && exit 0

say "control-plane binaries (cached under ${DELIVERY_CACHE:-~/.cache/delivery})"
.venv/bin/python -m sandbox build

# tests/integration/test_argo_migration.py moves a Rollout from the real Argo Rollouts controller:
# built from its Go module at the version the test pins (ARGO_VERSION), cached by version.
argo_version=v1.10.2
say "Argo Rollouts' controller $argo_version (cached under ${DELIVERY_CACHE:-~/.cache/delivery})"
.venv/bin/python -c "from benchmarks.peers import argo_build; argo_build.build('$argo_version')"
