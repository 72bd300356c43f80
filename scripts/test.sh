#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite under the default Python and,
# when present, Python 3.9: both suites at the same time, each spread over pytest-xdist
# workers, each into its own log; the logs are printed when done, in order, each under a
# header. Exits non-zero if either suite failed. Extra arguments go to pytest.
#   bash scripts/test.sh            the whole suite on both Pythons
#   bash scripts/test.sh --quick    only the tests that need no lab (markers: not lab, not slow),
#                                   on the default Python only: under a minute
# FISWATCH_TEST_WORKERS overrides the number of xdist workers per Python (default 3).
# scripts/check.sh (ruff, mypy) runs first; its failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi

bash scripts/setup.sh
export AWS_EC2_METADATA_DISABLED=true

# ruff and mypy first (seconds): a finding fails the run, the suites still run for the whole picture
check_status=0
bash scripts/check.sh || check_status=1

workers=${FISWATCH_TEST_WORKERS:-3}
# --dist loadfile: a module's tests stay on one worker, so a module-scoped fixture (a lab, a
# moto server, three `watch` runs) is built once, not once per worker. --no-loadscope-reorder:
# modules go out in collection order (tests/conftest.py puts the longest first), not by test count
args=(-q -p no:cacheprovider -n "$workers" --dist loadfile --no-loadscope-reorder --durations=20)
if [ "$quick" = 1 ]; then
  args=(-q -p no:cacheprovider -n "$workers" --durations=10 -m "not lab and not slow")
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/fiswatch-test.XXXXXX")
names=()
pids=()
start_suite() {  # start_suite PYTHON NAME: run pytest in the background into $logs/NAME.log
  local py=$1 name=$2
  {
    # an asynchronous command may start with SIGINT ignored, and Python then keeps it ignored:
    # the tests that interrupt a child (`lab failover`, the dashboard) need it as a terminal gives it
    trap - INT QUIT
    echo "== pytest on $("$py" --version 2>&1): pytest ${args[*]} ${*:3}"
    "$py" -m pytest "${args[@]}" "${@:3}"
  } >"$logs/$name.log" 2>&1 &
  names+=("$name")
  pids+=($!)
}

began=$(date +%s)
start_suite .venv/bin/python default "$@"
# --quick is the edit-test loop: the default Python only (the 3.9 run is the full suite's, or
# `.venv39/bin/python -m pytest -m "not lab and not slow"` by hand)
if [ -x .venv39/bin/python ] && [ "$quick" = 0 ]; then
  start_suite .venv39/bin/python py39 "$@"
fi

status=0
for i in "${!pids[@]}"; do
  rc=0
  wait "${pids[$i]}" || rc=$?
  echo
  echo "=================== ${names[$i]} suite: exit $rc ==================="
  cat "$logs/${names[$i]}.log"
  [ "$rc" = 0 ] || status=1
done
echo
[ "$check_status" = 0 ] || { echo "== scripts/check.sh (ruff, mypy) failed: see its lines at the top"; status=1; }
echo "== ${#pids[@]} suite(s) done in $(( $(date +%s) - began )) s; exit $status"
rm -rf "$logs"
exit $status
