#!/usr/bin/env bash
# The demo: set up, start the local control plane, install the CRDs and run the controller.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
printf '\n== starting the local control plane\n'
.venv/bin/python -m sandbox up
eval "$(.venv/bin/python -m sandbox env)"
exec .venv/bin/python -m demo
