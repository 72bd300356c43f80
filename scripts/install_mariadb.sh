#!/bin/sh
# Install the MariaDB server binaries the fiswatch lab needs (mariadbd, mariadb-install-db)
# on Debian or Ubuntu. Run as root: sudo scripts/install_mariadb.sh
#
# The lab starts its own mariadbd processes in its own directory; the system service that the
# package installs is stopped and disabled unless you pass --keep-service.
set -eu

keep_service=no
for arg in "$@"; do
    case "$arg" in
        --keep-service) keep_service=yes ;;
        -h|--help)
            echo "usage: sudo $0 [--keep-service]   install mariadb-server for the fiswatch lab (Debian/Ubuntu)"
            exit 0 ;;
        *) echo "$0: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
    echo "mariadbd is already installed: $(command -v mariadbd || echo /usr/sbin/mariadbd)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "$0: run as root, e.g. sudo $0" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$0: this helper knows Debian/Ubuntu (apt-get) only; install MariaDB server 10.6+ with your package manager" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends mariadb-server
if [ "$keep_service" = no ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now mariadb >/dev/null 2>&1 || true
fi
echo "installed: $(/usr/sbin/mariadbd --version)"
