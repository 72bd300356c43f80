"""Shared test fixtures.

Tests talk to real MariaDB servers over real sockets. The machine's server listens on
127.0.0.1:3306 (root, empty password); the suite creates a non-root user (root would
bypass read_only) and its own database. Nothing here resolves a name through the
system's resolver, and no AWS endpoint is ever reached.
"""
import os
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Never let boto3 (or anything) reach the instance-metadata address or real AWS.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

pytest_plugins = ["_lab_fixture"]

MYSQL_HOST = os.environ.get("FISWATCH_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("FISWATCH_TEST_MYSQL_PORT", "3306"))
# One database per test process: the 3.11 and 3.9 suites and their xdist workers run at the
# same time against this one server, and a shared database would let one process's
# `DROP TABLE` or row counts leak into another's. The session fixture creates and drops it.
TEST_DB = "fiswatch_test_%d" % os.getpid()
TEST_USER = "fiswatch_probe"
# Both Pythons' suites with their xdist workers share this server, and one test alone opens
# waves of 50 connections (tests/test_wire_bounds.py): MariaDB's default of 151 is too few.
MAX_CONNECTIONS = 1000


def wait_for(predicate, timeout=30.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns a truthy value; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, message, last))


class EventLog:
    """A runner output keeping every event it is handed: what --json and the record get.

    Pass it as `outputs=[Output(log, "test")]`; call `runner.flush_outputs(...)` (or poll
    with wait_for) before reading, since each output runs in its own thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events = []

    def __call__(self, view, events):
        with self._lock:
            self._events.extend(events)

    @property
    def events(self):
        with self._lock:
            return list(self._events)


class MariaDB:
    """Connection facts of the test server, for a non-root user."""

    def __init__(self, host, port, user, password, database):
        self.host, self.port, self.user = host, port, user
        self.password, self.database = password, database

    def root(self, database=None):
        import pymysql

        # plaintext: PyMySQL 1.2 otherwise builds a TLS context (~20 ms of CPU) at every connect
        return pymysql.connect(host=self.host, port=self.port, user="root", password="",
                               database=database, autocommit=True, connect_timeout=5, ssl_disabled=True)

    def query(self, sql, args=None, database=None):
        conn = self.root(database or self.database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            conn.close()


@pytest.fixture(scope="session")
def mariadb():
    """The machine's MariaDB with a database and a non-root user for the probes."""
    import pymysql

    # a fixed password: several test sessions may share this server, and a random one per
    # session would let one session lock the other out mid-run
    password = "fiswatch-probe-test-pw"
    try:
        conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="",
                               autocommit=True, connect_timeout=5)
    except pymysql.err.OperationalError as exc:  # pragma: no cover - CI installs it
        pytest.fail("MariaDB is not reachable on %s:%d (%s); .ci/run starts it" % (MYSQL_HOST, MYSQL_PORT, exc))
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections")
        if cur.fetchone()[0] < MAX_CONNECTIONS:
            cur.execute("SET GLOBAL max_connections = %d" % MAX_CONNECTIONS)
        cur.execute("CREATE DATABASE IF NOT EXISTS %s" % TEST_DB)
        cur.execute("CREATE TABLE IF NOT EXISTS %s.test (id INT AUTO_INCREMENT PRIMARY KEY, value INT)" % TEST_DB)
        for host in ("127.0.0.1", "localhost", "%"):
            cur.execute("CREATE USER IF NOT EXISTS '%s'@'%s'" % (TEST_USER, host))
            cur.execute("ALTER USER '%s'@'%s' IDENTIFIED BY %%s" % (TEST_USER, host.replace("%", "%%")), (password,))
            cur.execute("GRANT ALL ON %s.* TO '%s'@'%s'" % (TEST_DB, TEST_USER, host))
    conn.close()
    yield MariaDB(MYSQL_HOST, MYSQL_PORT, TEST_USER, password, TEST_DB)
    conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="",
                           autocommit=True, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s" % TEST_DB)
    finally:
        conn.close()


# The modules that take longest, slowest first (per-module sums of --durations=0, 3.11, 2026-12-06: each
# module alone, or two workers on a loaded machine; tests/test_bench_quick*.py is the benchmark in three
# modules). xdist hands a worker whole modules (--dist loadfile) in collection order: starting these first
# keeps one of them from starting last and running alone while the other workers idle. A module missing here
# goes after them; a new module of a minute or more belongs here.
LONGEST_FIRST = ("test_lab_exec.py", "test_lab_maz.py", "test_lab_dnsflap.py", "test_wire_gate_more.py",
                 "test_lab_gate.py", "test_lab_bluegreen.py", "test_lab_rdsproxy.py", "test_bench_quick_lab.py",
                 "test_bench_quick.py", "test_wire_column.py", "test_bench_quick_memory.py", "test_lab_tls.py",
                 "test_lab_aurora.py", "test_lab_faults.py", "test_lab_crash.py", "test_lab_bluegreen_demo.py",
                 "test_lab_maz_lag.py", "test_report_lab.py", "test_lab_names.py", "test_lab.py", "test_verify.py",
                 "test_fleet_moto.py", "test_lab_patch_seen.py", "test_lab_rdsproxy_accounting.py", "test_read_probe.py", "test_lab_daemon_gone.py",
                 "test_wire_bounds.py", "test_lab_demo_faults.py", "test_lab_disk_full.py", "test_dashboard_pty.py",
                 "test_lab_simulate.py", "test_lab_rdsproxy_tls.py")


def pytest_collection_modifyitems(config, items):
    """A test that takes the `lab` fixture, or sits in a module that starts a lab of its own, needs
    the lab: mark it so, whatever its module says
    (`scripts/test.sh --quick` runs `-m "not lab and not slow"`). The longest modules go first;
    a module's own tests keep their order."""
    for item in items:
        module = getattr(item, "module", None)
        # a module that starts a lab of its own shape (private_lab, a demo on its own addresses)
        if "lab" in getattr(item, "fixturenames", ()) or any(
                hasattr(module, name) for name in ("private_lab", "pick_lab_addresses")):
            item.add_marker(pytest.mark.lab)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(item.nodeid.split("::")[0]), len(rank)))


def pytest_sessionfinish(session, exitstatus):
    """The shared lab of this process (tests/_lab_fixture.py), if a test started one, goes down."""
    fixture = sys.modules.get("_lab_fixture")
    if fixture is not None:
        fixture.stop_shared_lab()


def pytest_configure(config):
    """SIGINT as a terminal gives it. A run started in the background by a non-interactive shell (a CI
    runner's `cmd &`) begins with SIGINT ignored, every child inherits that across exec, and Python
    keeps it ignored: the tests that press Ctrl-C (a dashboard in a pty, `lab failover` midway, `lab
    exec`'s program) would then see nothing happen. A handler here is reset to the default in every
    child at exec, so each Python child installs its KeyboardInterrupt again."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
