"""Error kinds from real sockets: a black-holed connect, a refused port, client read and write
timeouts, and the server's own statement timeout, for both drivers."""
import json
import socket
import threading
import time

import pytest

from fiswatch import events as E
from fiswatch.backends.registry import make_backend, parse_backend_spec

BACKENDS = {"pymysql": "pymysql:connect_timeout=1,read_timeout=1,write_timeout=1",
            "mysql-connector": "mysql-connector:connection_timeout=1,read_timeout=1,write_timeout=1",
            "mysql-connector-pure": "mysql-connector:connection_timeout=1,read_timeout=1,write_timeout=1,"
                                    "use_pure=true"}


def _c_extension(backend):
    """mysql-connector over libmysqlclient: its timeouts come as plain 2013 errors."""
    return backend.info().notes == "C extension"


@pytest.fixture
def blackhole():
    """A port whose SYNs go unanswered: a listener that never accepts, its accept queue filled.

    Linux drops a SYN when the listener's accept queue is full, so a connect there times out
    exactly as one to a black-holed instance does (no RST, no answer).
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(sock)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(("127.0.0.1", port))
        pytest.fail("the accept queue did not fill: the trick needs Linux's SYN drop")
    except socket.timeout:
        pass
    finally:
        probe.close()
    yield port
    for sock in fillers + [server]:
        sock.close()


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _error_of(backend, func):
    try:
        func()
    except Exception as exc:  # the driver's own class
        return backend.classify(exc)
    raise AssertionError("no error")


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_blackholed_connect_is_a_connect_timeout_not_refused(name, blackhole, mariadb):
    backend = make_backend(parse_backend_spec(BACKENDS[name]))
    info = _error_of(backend, lambda: backend.connect("127.0.0.1", blackhole, "u", "p", "x"))
    assert info.kind == "connect-timeout" and info.code == 2003, info
    refused = _error_of(backend, lambda: backend.connect("127.0.0.1", _closed_port(), "u", "p", "x"))
    assert refused.kind == "refused" and refused.code == 2003, refused


def _connect(backend, mariadb):
    return backend.connect(mariadb.host, mariadb.port, mariadb.user, mariadb.password, mariadb.database)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_server_statement_timeout_is_not_a_client_read_timeout(name, mariadb):
    backend = make_backend(parse_backend_spec(BACKENDS[name]))
    conn = _connect(backend, mariadb)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION max_statement_time = 0.2")
        server = _error_of(backend, lambda: (cur.execute("SELECT SLEEP(3)"), cur.fetchall()))
    finally:
        conn.close()
    assert server.kind == "query-timeout" and server.code == 1969, server
    conn = _connect(backend, mariadb)
    try:
        cur = conn.cursor()
        client = _error_of(backend, lambda: (cur.execute("SELECT SLEEP(5)"), cur.fetchall()))
    finally:
        try:
            conn.close()
        except Exception:
            pass
    # libmysqlclient reports its read timeout exactly like a lost connection: fiswatch says
    # what it can know rather than guess
    assert client.kind == ("lost" if _c_extension(backend) else "read-timeout"), client


class FreezingRelay:
    """A loopback TCP relay to MariaDB that, once frozen, stops reading from the client.

    The client's socket buffers then fill and its next large send blocks: a real write
    timeout, as when a peer stops draining its receive window.
    """

    def __init__(self, target):
        self.target = target
        self.frozen = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.socks = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        upstream = socket.create_connection(self.target)
        self.socks += [client, upstream]
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        try:
            while True:
                if from_client and self.frozen.is_set():
                    time.sleep(3600)  # hold the bytes in the kernel: nobody reads them
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)
        except OSError:
            return

    def close(self):
        for sock in self.socks:
            sock.close()


@pytest.mark.parametrize("name", sorted(BACKENDS))
@pytest.mark.slow
def test_blocked_send_is_a_write_timeout(name, mariadb):
    backend = make_backend(parse_backend_spec(BACKENDS[name]))
    relay = FreezingRelay((mariadb.host, mariadb.port))
    try:
        conn = backend.connect("127.0.0.1", relay.port, mariadb.user, mariadb.password, mariadb.database)
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()
        relay.frozen.set()  # the relay's reader forwards at most one more chunk, then parks
        big = "SELECT '%s'" % ("x" * (64 << 20))
        info = _error_of(backend, lambda: cur.execute(big))
    finally:
        relay.close()
    assert info.kind == ("timeout" if _c_extension(backend) else "write-timeout"), info


def test_a_blackholed_endpoint_shows_as_connect_timeout_in_the_event_stream(blackhole, mariadb):
    from test_cli import fiswatch

    out = fiswatch("watch", "--json", "--duration", "3", "--backend", "pymysql",
                   "--endpoint", "db=mysql://u@127.0.0.1:%d/x" % blackhole, env={"FISWATCH_PASSWORD_DB": "x"})
    errors = [e for e in map(json.loads, out.stdout.splitlines()) if e["event"] == E.ERROR]
    assert errors and {e["kind"] for e in errors} == {"connect-timeout"}, errors


def test_pymysql_on_a_connection_already_lost_is_lost_not_a_blank_error(mariadb):
    """A statement on a PyMySQL connection lost earlier (a killed server, a swallowed error in a side
    query such as the read probe's lag lookup) raises InterfaceError(0, ''): that is a lost connection
    with a message that says so, not kind "error" with an empty text."""
    import pymysql

    backend = make_backend(parse_backend_spec("pymysql"))
    conn = _connect(backend, mariadb)
    killer = pymysql.connect(host=mariadb.host, port=mariadb.port, user=mariadb.user, password=mariadb.password)
    try:
        killer.cursor().execute("KILL %d" % conn.thread_id())
        cur = conn.cursor()
        first = _error_of(backend, lambda: cur.execute("SELECT 1"))
        again = _error_of(backend, lambda: cur.execute("SELECT 1"))
    finally:
        killer.close()
    assert first.kind in ("lost", "gone-away", "killed"), first
    assert again.kind == "lost" and again.code == 2013 and "already closed" in again.message, again
