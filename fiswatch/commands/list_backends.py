"""`fiswatch backends`: the installed connector backends, their versions and default options."""
import argparse

from fiswatch.exits import EXIT_OK


def add_backends_parser(sub) -> None:
    p = sub.add_parser("backends", help="list installed connector backends, versions and default options")
    p.set_defaults(handler=run_backends)


def run_backends(args: argparse.Namespace) -> int:
    from fiswatch.backends.registry import describe_backends

    rows = describe_backends()
    lib_w = max([24] + [len(row[1]) for row in rows])  # aws-advanced-python-wrapper is 27
    print("%-16s %-*s %-9s %s" % ("BACKEND", lib_w, "LIBRARY", "VERSION", "DEFAULT OPTIONS"))
    for name, library, version, defaults, notes in rows:
        print("%-16s %-*s %-9s %s" % (name, lib_w, library, version, defaults))
        for line in notes.splitlines():
            print("%-16s %s" % ("", line))
    print("\nA timeout of 'none' waits forever: mysql-connector-python has read_timeout since 9.2,\n"
          "but it defaults to none. Set options per backend: --backend mysql-connector:read_timeout=1\n"
          "TLS: --ssl-mode DISABLED|PREFERRED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY and --ssl-ca FILE, for every\n"
          "backend, or per backend: --backend pymysql:ssl_mode=VERIFY_IDENTITY")
    return EXIT_OK
