"""The fault-injecting proxy, against a real echo server and the machine's MariaDB."""
import socket
import socketserver
import threading
import time

import pytest

from conftest import wait_for
from fiswatch.lab.proxy import FaultProxy, ProxyLoop


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo():
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo):
    p = FaultProxy("127.0.0.1", 0, echo[0], echo[1], name="echo").start()
    yield p
    p.stop()


def _connect(address, timeout=5.0):
    sock = socket.create_connection(address, timeout=timeout)
    return sock


def _send_until_reset(address):
    """Connect, send, read: returns only by raising (the reset may come at any step)."""
    with _connect(address, timeout=10) as sock:
        sock.sendall(b"x")
        data = sock.recv(10)
        raise AssertionError("expected a reset, got %r" % data)


def _roundtrip(sock, payload=b"ping"):
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_pass_forwards_both_ways(proxy):
    host, port = proxy.address
    assert host == "127.0.0.1" and port > 0
    with _connect(proxy.address) as sock:
        assert _roundtrip(sock, b"hello") == b"hello"
        wait_for(lambda: proxy.connection_count() == 1, 10, message="one connection")
    wait_for(lambda: proxy.connection_count() == 0, 10, message="connection forgotten after close")
    assert proxy.mode == "pass"


def test_blackhole_fences_open_and_new_connections_for_good(proxy):
    old = _connect(proxy.address)
    assert _roundtrip(old) == b"ping"
    proxy.set_mode("blackhole")
    assert proxy.mode == "blackhole"
    old.settimeout(0.5)
    old.sendall(b"lost")
    with pytest.raises(socket.timeout):
        old.recv(10)  # no data, no FIN (recv would return b""), no RST (would raise)
    new = _connect(proxy.address)  # accepted...
    new.settimeout(0.5)
    new.sendall(b"x")
    with pytest.raises(socket.timeout):
        new.recv(10)  # ...and fenced
    proxy.set_mode("pass")
    with _connect(proxy.address) as fresh:
        assert _roundtrip(fresh, b"again") == b"again"
    old.sendall(b"still")
    with pytest.raises(socket.timeout):
        old.recv(10)  # a fenced connection stays dead
    assert proxy.connection_count() >= 2
    old.close()
    new.close()


def test_reset_sends_rst_to_open_and_new_connections(proxy):
    sock = _connect(proxy.address)
    assert _roundtrip(sock) == b"ping"
    proxy.set_mode("reset")
    with pytest.raises(ConnectionResetError):
        wait_for(lambda: sock.recv(10) and False, 10, message="reset")
    sock.close()
    with pytest.raises(ConnectionResetError):
        _send_until_reset(proxy.address)


def test_refuse_stops_listening_and_pass_listens_again(proxy):
    sock = _connect(proxy.address)
    assert _roundtrip(sock) == b"ping"
    address = proxy.address
    proxy.set_mode("refuse")
    with pytest.raises(ConnectionResetError):
        wait_for(lambda: sock.recv(10) and False, 10, message="reset")
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        _connect(address)
    proxy.set_mode("pass")
    assert proxy.address == address
    with _connect(address) as again:
        assert _roundtrip(again, b"back") == b"back"


def test_latency_delays_each_chunk(proxy):
    with _connect(proxy.address) as sock:
        assert _roundtrip(sock) == b"ping"
        proxy.set_mode("latency", latency=0.3)
        assert proxy.mode == "latency" and proxy.latency == 0.3
        started = time.monotonic()
        assert _roundtrip(sock, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.6  # delayed once each way
        proxy.set_mode("pass")
        assert _roundtrip(sock, b"fast") == b"fast"


def test_unknown_mode_is_a_clear_error(proxy):
    with pytest.raises(ValueError, match="unknown proxy mode 'drop'"):
        proxy.set_mode("drop")
    assert proxy.mode == "pass"


def test_port_taken_is_a_clear_oserror(proxy, echo):
    other = FaultProxy("127.0.0.1", proxy.address[1], echo[0], echo[1], name="dup")
    with pytest.raises(OSError) as info:
        other.start()
    text = str(info.value)
    assert "127.0.0.1:%d" % proxy.address[1] in text and "dup" in text


def test_set_target_moves_new_connections(echo):
    second = _EchoServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=second.serve_forever, daemon=True).start()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, not listening: connecting there is refused
    try:
        with FaultProxy("127.0.0.1", 0, "127.0.0.1", dead.getsockname()[1], name="t") as p:
            with pytest.raises(ConnectionResetError):  # upstream refused -> client sees a reset
                _send_until_reset(p.address)
            p.set_target(*second.server_address)
            assert p.target == second.server_address
            with _connect(p.address) as sock:
                assert _roundtrip(sock, b"moved") == b"moved"
    finally:
        dead.close()
        second.shutdown()
        second.server_close()


def test_stop_closes_everything_and_is_idempotent(echo):
    p = FaultProxy("127.0.0.1", 0, echo[0], echo[1]).start()
    address = p.address
    sock = _connect(address)
    assert _roundtrip(sock) == b"ping"
    p.stop()
    p.stop()
    sock.settimeout(10)
    try:
        assert sock.recv(10) == b""
    except ConnectionResetError:
        pass
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        _connect(address)


def test_many_proxies_share_one_loop(echo):
    shared = ProxyLoop().start()
    proxies = [FaultProxy("127.0.0.1", 0, echo[0], echo[1], name="p%d" % i, loop=shared).start()
               for i in range(4)]
    try:
        assert len({p.address for p in proxies}) == 4
        proxies[0].set_mode("blackhole")
        for p in proxies[1:]:
            with _connect(p.address) as sock:
                assert _roundtrip(sock, p.name.encode()) == p.name.encode()
        names = {t.name for t in threading.enumerate()}
        assert not any(n.startswith("fiswatch-proxy-p") for n in names)
    finally:
        for p in proxies:
            p.stop()
        shared.stop()


def test_mariadb_through_proxy_then_fenced():
    import pymysql

    from conftest import MYSQL_HOST, MYSQL_PORT

    # root is fine here: this test is about the wire, not about read_only
    with FaultProxy("127.0.0.1", 0, MYSQL_HOST, MYSQL_PORT, name="db") as p:
        host, port = p.address

        def connect(**kw):
            return pymysql.connect(host=host, port=port, user="root", password="", connect_timeout=2, **kw)

        conn = connect(read_timeout=1)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        p.set_mode("blackhole")
        with pytest.raises(pymysql.err.OperationalError) as info:
            with conn.cursor() as cur:
                cur.execute("SELECT 2")
        assert info.value.args[0] == 2013
        with pytest.raises(pymysql.err.OperationalError):
            connect(read_timeout=1)  # accepted, but the handshake never arrives
        p.set_mode("pass")
        again = connect(read_timeout=5)
        with again.cursor() as cur:
            cur.execute("SELECT 3")
            assert cur.fetchone() == (3,)
        again.close()
