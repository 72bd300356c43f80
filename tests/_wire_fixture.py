"""Set-up shared by the wire tests: a real FaultProxy with a Ledger in front of the machine's MariaDB, and
the program that writes through the lab's Aurora name (for `lab exec`, `demo --exec`, `watch --lab --exec`)."""
import contextlib
import textwrap

import pymysql

from fiswatch.lab.proxy import FaultProxy
from fiswatch.lab.wire.accounting import Ledger


@contextlib.contextmanager
def accounted_proxy(mariadb, name, *create):
    """(proxy, ledger): an accounting proxy named `name` to `mariadb`, after the CREATE statements `create`."""
    ledger = Ledger()
    proxy = FaultProxy("127.0.0.1", 0, mariadb.host, mariadb.port, name=name,
                       session=ledger.session_factory(name)).start()
    conn = pymysql.connect(host=mariadb.host, port=mariadb.port, user=mariadb.user, password=mariadb.password,
                           database=mariadb.database, autocommit=True)
    with conn.cursor() as cur:
        for statement in create:
            cur.execute(statement)
    conn.close()
    try:
        yield proxy, ledger
    finally:
        proxy.stop()
        ledger.close()


def snapshot(proxy, ledger):
    """The ledger's snapshot, taken on the proxy's own loop."""
    return proxy._ploop.call(ledger.snapshot)


def lab_writer(table):
    """A program that INSERTs into `table` through the lab's Aurora name every 50 ms, reconnecting after any
    error: for `argv[1]` seconds, or until killed without it."""
    return textwrap.dedent("""\
        import os, sys, time
        import pymysql
        def connect():
            return pymysql.connect(host=os.environ["FISWATCH_LAB_AURORA_HOST"], port=int(os.environ["FISWATCH_LAB_PORT"]),
                                   user=os.environ["FISWATCH_LAB_USER"], password=os.environ["FISWATCH_LAB_PASSWORD"],
                                   database=os.environ["FISWATCH_LAB_DATABASE"], autocommit=True, connect_timeout=2,
                                   read_timeout=2, write_timeout=2)
        deadline = time.time() + float(sys.argv[1]) if len(sys.argv) > 1 else float("inf")
        conn = None
        while time.time() < deadline:
            try:
                if conn is None:
                    conn = connect()
                    conn.cursor().execute("CREATE TABLE IF NOT EXISTS %(table)s (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
                conn.cursor().execute("INSERT INTO %(table)s (v) VALUES (1)")
            except Exception:
                conn = None
                time.sleep(0.2)
            time.sleep(0.05)
    """) % {"table": table}
