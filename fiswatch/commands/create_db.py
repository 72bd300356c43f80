"""`fiswatch create-db`: the workshop's table where it is missing, and each endpoint's address."""
import argparse

from fiswatch.config.sources import collect_endpoints
from fiswatch.exits import EXIT_FAIL, EXIT_OK, CommandError, UsageError
from fiswatch.config.options import EndpointOptions, add_endpoint_args, add_tls_args, tls_options
from fiswatch.output.streams import say

COLUMN = 30  # the workshop's column width


def add_create_db_parser(sub) -> None:
    p = sub.add_parser("create-db", help="create the test table if missing and show each endpoint's address",
                       description="Create the workshop's table (id INT AUTO_INCREMENT PRIMARY KEY, value INT) "
                                   "where it is missing and print each endpoint with the address it resolves to.")
    add_endpoint_args(p)
    p.add_argument("--backend", default="pymysql", help="library used to connect (default: %(default)s)")
    add_tls_args(p)
    p.set_defaults(handler=run_create_db)


# -- create-db -------------------------------------------------------------------------------------------------
CREATE_TABLE = "CREATE TABLE IF NOT EXISTS `%s` (id INT AUTO_INCREMENT PRIMARY KEY, value INT)"
TABLE_EXISTS = "SELECT 1 FROM `%s` LIMIT 0"
NO_TABLE = 1146


def ensure_table(conn, backend, table: str) -> bool:
    """Create `table` only when it is missing; True when created.

    Looking first means a user allowed only to read and write an existing table (no
    CREATE privilege) gets no "CREATE command denied" for a table that is already there.
    """
    cur = conn.cursor()
    try:
        try:
            cur.execute(TABLE_EXISTS % table)
            cur.fetchall()
            return False
        except Exception as exc:  # noqa: BLE001 - the driver's own error class
            if backend.classify(exc).code != NO_TABLE:
                raise
        cur.execute(CREATE_TABLE % table)
        conn.commit()
        return True
    finally:
        cur.close()


def run_create_db(args: argparse.Namespace) -> int:
    from fiswatch.backends.base import BackendOptionError
    from fiswatch.backends.registry import UnknownBackend, make_backend, parse_backend_spec
    from fiswatch.engine.resolve import Resolver

    try:
        endpoints, nameserver = collect_endpoints(EndpointOptions.from_args(args))
        backend = make_backend(parse_backend_spec(args.backend), tls_options(args))
        backends = {ep.name: backend.for_endpoint(ep) for ep in endpoints}  # TLS settled before any connect
    except (BackendOptionError, UnknownBackend) as exc:
        raise UsageError(str(exc))
    except CommandError as exc:
        say(str(exc))
        return EXIT_FAIL
    resolver = Resolver(nameserver)
    addresses, problems = [], []
    for ep in endpoints:
        res = resolver.resolve(ep.host)
        if res.address is None:
            addresses.append("(%s)" % (res.error or "no address"))
            problems.append("%s: %s does not resolve (%s)" % (ep.name, ep.host, res.error))
            continue
        addresses.append(res.address)
        backend = backends[ep.name]
        try:
            conn = backend.connect(res.address, ep.port, ep.user, ep.password.reveal() if ep.password else "",
                                   ep.database, server_hostname=ep.host)
            try:
                ensure_table(conn, backend, ep.table)
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001
            problems.append("%s: %s" % (ep.name, backend.classify(exc).text()))
    print("".join(("%-" + str(COLUMN) + "s") % e.name.upper() for e in endpoints).rstrip())
    print("".join(("%-" + str(COLUMN) + "s") % a for a in addresses).rstrip())
    for line in problems:
        say(line, prefix="fiswatch create-db: ")
    return EXIT_FAIL if problems else EXIT_OK
