#!/usr/bin/env bash
# Set up (scripts/setup.sh, no test server needed) and run `fiswatch demo` on the local lab.
# Extra arguments go to `fiswatch demo` (see `fiswatch demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-server --no-py39 >&2
exec .venv/bin/fiswatch demo "$@"
