#!/usr/bin/env bash
# Set up everything fiswatch needs on a fresh Debian/Ubuntu machine, idempotently:
#   - MariaDB (mariadbd for the local lab; a running server on 127.0.0.1:3306 for the tests)
#   - sysbench (the wire accounting's benchmark figure: python -m fiswatch.bench wire)
#   - .venv   : the default python3 with fiswatch installed editable, plus test and plot extras
#   - .venv39 : the same on Python 3.9 when pyenv has one (the workshop's Amazon Linux 2023 Python)
# Usage: bash scripts/setup.sh [--no-server] [--no-py39]
set -euo pipefail
cd "$(dirname "$0")/.."

want_server=1
want_py39=1
for arg in "$@"; do
  case "$arg" in
    --no-server) want_server=0 ;;
    --no-py39) want_py39=0 ;;
    *) echo "setup.sh: unknown option $arg (use --no-server, --no-py39)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }

have_mariadbd() { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; }

if ! have_mariadbd; then
  bash scripts/install_mariadb.sh
fi
if ! command -v sysbench >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends sysbench >/dev/null
  else
    say "sysbench is missing (the wire benchmark needs it): sudo apt-get install sysbench"
  fi
fi

# the TLS tests check the lab's certificates with a client outside Python's stack: openssl s_client
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing openssl"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl >/dev/null; }
  else
    say "openssl is missing: install it (apt-get install openssl) for tests/test_lab_tls.py"
  fi
fi

root_sql() { mariadb --protocol=tcp -h127.0.0.1 -P3306 -uroot --connect-timeout=3 -e "$1" >/dev/null 2>&1; }

if [ "$want_server" = 1 ]; then
  if ! mariadb-admin --protocol=tcp -h127.0.0.1 -P3306 --connect-timeout=2 ping >/dev/null 2>&1; then
    say "starting the MariaDB server"
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do
      mariadb-admin --protocol=tcp -h127.0.0.1 -P3306 --connect-timeout=2 ping >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  if ! root_sql "SELECT 1"; then
    # a fresh Debian install lets root in over the unix socket only: allow an empty password on 127.0.0.1 too
    say "allowing root with an empty password on 127.0.0.1 (test server only)"
    mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" || true
  fi
  root_sql "CREATE DATABASE IF NOT EXISTS test" || { echo "setup: MariaDB on 127.0.0.1:3306 does not accept root with an empty password" >&2; exit 1; }
fi

pip_quiet() {
  # pip's own index warnings are noise here: show its output only when it fails
  local log
  log=$(mktemp)
  if ! "$@" --disable-pip-version-check -q >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2 || true
    rm -f "$log"
    echo "setup: pip failed: $*" >&2
    return 1
  fi
  rm -f "$log"
}

uv_quiet() {  # uv's progress is noise here too: its output only when it fails
  local log
  log=$(mktemp)
  if ! "$@" -q >"$log" 2>&1; then
    cat "$log" >&2 || true
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

make_venv() {  # make_venv PYTHON DIR EXTRAS
  local py=$1 dir=$2 extras=$3
  if [ ! -x "$dir/bin/python" ]; then
    say "creating $dir with $($py --version 2>&1)"
    "$py" -m venv "$dir"
  fi
  # uv installs what pip would, in a fraction of the time (a fresh clone's CI spent minutes in pip);
  # pip stays the way wherever uv cannot be had or fails
  if [ ! -x "$dir/bin/uv" ]; then
    pip_quiet "$dir/bin/python" -m pip install "uv>=0.5,<1" || true
  fi
  if [ -x "$dir/bin/uv" ] && uv_quiet "$dir/bin/uv" pip install --python "$dir/bin/python" -e ".[$extras]"; then
    return 0
  fi
  [ -x "$dir/bin/uv" ] && say "uv failed in $dir (its lines above): installing with pip"
  pip_quiet "$dir/bin/python" -m pip install -e ".[$extras]"
}

# the two virtualenvs are independent: build them at the same time (a fresh clone's CI spends
# minutes in pip otherwise), and fail if either fails
py39_pid=""
if [ "$want_py39" = 1 ]; then
  py39=$(ls -d /root/.pyenv/versions/3.9.*/bin/python3 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$py39" ] && command -v python3.9 >/dev/null 2>&1; then py39=$(command -v python3.9); fi
  if [ -n "$py39" ]; then
    make_venv "$py39" .venv39 "test" &
    py39_pid=$!
  else
    say "no Python 3.9 found: the suite runs on $(python3 --version 2>&1) only"
  fi
fi
venv_status=0
make_venv python3 .venv "test,plot,lint" || venv_status=$?
if [ -n "$py39_pid" ]; then
  wait "$py39_pid" || venv_status=$?
fi
[ "$venv_status" = 0 ] || exit "$venv_status"
say "ready"
