#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite under the default Python and,
# when present, Python 3.9. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export AWS_EC2_METADATA_DISABLED=true
status=0
echo "== pytest on $(.venv/bin/python --version 2>&1)"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ -x .venv39/bin/python ]; then
  echo "== pytest on $(.venv39/bin/python --version 2>&1)"
  .venv39/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
fi
exit $status
