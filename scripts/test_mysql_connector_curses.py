#!/usr/bin/env python3
"""Drop-in for the FIS workshop's test_mysql_connector_curses.py.

Write to both workshop databases with mysql-connector-python, side by side, stalls shown.

A thin call into fiswatch (installed from its source: python3 -m pip install --user ./fiswatch): the workshop's secrets FisAuroraSecret
and FisMysqlSecret, both endpoints. Extra arguments are passed on (e.g. --region).
"""
import sys

ARGS = ['watch', '--workshop', '--backend', 'mysql-connector']


def _main():
    try:
        from fiswatch.cli import main
    except ImportError as exc:
        if not (getattr(exc, "name", None) or "fiswatch").startswith("fiswatch"):
            raise
        sys.stderr.write("%s: fiswatch is not installed for %s; install it with "
                         "`python3 -m pip install --user ./fiswatch` (a copy of its source) and run this again\n"
                         % (sys.argv[0], sys.executable))
        return 1
    return main(ARGS + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(_main())
