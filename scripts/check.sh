#!/usr/bin/env bash
# The static checks, with the .venv's pinned tools (setup.cfg `lint` extra, installed by scripts/setup.sh):
#   ruff check fiswatch tests   (rules: ruff.toml)
#   mypy                        (settings: setup.cfg [mypy])
# One line per tool; exits non-zero when either finds anything (their findings are printed above it).
# Usage: bash scripts/check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

venv=.venv
for tool in ruff mypy; do
  if [ ! -x "$venv/bin/$tool" ]; then
    echo "check: $venv/bin/$tool is missing: run bash scripts/setup.sh" >&2
    exit 2
  fi
done

status=0
run() {  # run NAME COMMAND...: the tool's findings, then one line saying how it went
  local name=$1 out rc start
  shift
  start=$SECONDS
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" = 0 ]; then
    echo "check: $name ok ($((SECONDS - start)) s)"
  else
    printf '%s\n' "$out"
    echo "check: $name FAILED (exit $rc)"
    status=1
  fi
}

run "ruff check fiswatch tests" "$venv/bin/ruff" check --quiet fiswatch tests
run "mypy fiswatch" "$venv/bin/mypy"
exit "$status"
