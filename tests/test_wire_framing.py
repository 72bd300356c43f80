"""MySQL framing and the session layer: pure fuzz, and real clients through a lab proxy to the machine's MariaDB."""
import random
import socket

import pymysql
import pytest

from conftest import wait_for
from fiswatch.lab import aurora
from fiswatch.lab.proxy import FaultProxy
from fiswatch.lab.wire import framing as F
from fiswatch.lab.wire.classify import classify
from fiswatch.lab.wire.session import COMMAND, UNMEASURED, Session


class Recorder:
    def __init__(self):
        self.events = []

    def on_handshake(self, hs):
        self.events.append(("handshake", hs))

    def on_command(self, command, packet):
        self.events.append(("command", command, packet.head[:200]))

    def on_answer(self, command, packet, answer):
        self.events.append(("answer", command, answer))

    def on_unmeasured(self, reason):
        self.events.append(("unmeasured", reason))

    def on_close(self):
        self.events.append(("close",))

    def kinds(self, kind):
        return [e for e in self.events if e[0] == kind]


GREETING = F.packet_bytes(0, b"\x0a10.11.6-MariaDB\x00" + (9).to_bytes(4, "little") + b"abcdefgh\x00"
                          + b"\xff\xf7\x08\x02\x00\xff\x81\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00"
                          + b"mysql_native_password\x00")
CAPS = (F.CLIENT_PROTOCOL_41 | F.CLIENT_SECURE_CONNECTION | F.CLIENT_PLUGIN_AUTH | F.CLIENT_CONNECT_WITH_DB
        | F.CLIENT_CONNECT_ATTRS)


def _handshake(caps=CAPS, attrs=b"\x09\x04_pid\x03123"):
    return F.packet_bytes(1, caps.to_bytes(4, "little") + b"\x00\x00\x00\x01\x21" + b"\x00" * 23 + b"app\x00"
                          + b"\x14" + b"p" * 20 + b"testdb\x00" + b"mysql_native_password\x00" + attrs)


def _session_up(behaviours=(), rewriter=None):
    s = Session(behaviours, rewriter=rewriter)
    s.from_server(GREETING)
    assert s.from_client(_handshake()) == _handshake()
    s.from_server(F.packet_bytes(2, b"\x00\x00\x00\x02\x00\x00\x00"))
    assert s.phase == COMMAND
    return s


def test_a_session_reads_handshake_commands_and_answers_across_any_chunking():
    rec = Recorder()
    s = _session_up([rec])
    client = F.packet_bytes(0, b"\x03INSERT INTO t VALUES (NULL)") + F.packet_bytes(0, b"\x03COMMIT")
    server = [F.packet_bytes(1, b"\x00\x01\x07\x03\x00\x00\x00"), F.packet_bytes(1, b"\x00\x00\x00\x02\x00\x00\x00")]
    first, second = client[:32], client[32:]
    out = b"".join(s.from_client(first[i:i + 3]) for i in range(0, len(first), 3))
    assert out == first
    for i in range(len(server[0])):
        s.from_server(server[0][i:i + 1])
    assert s.from_client(second) == second
    s.from_server(server[1] + F.packet_bytes(1, b"\xff\x1a\x05#HY000read only"))  # a stray answer: ignored
    hs = rec.kinds("handshake")[0][1]
    assert (hs.user, hs.database, hs.attributes) == ("app", "testdb", {"_pid": "123"})
    answers = rec.kinds("answer")
    assert [(a[1], a[2].kind, a[2].last_insert_id, a[2].status) for a in answers] == \
        [(F.COM_QUERY, "ok", 7, 3), (F.COM_QUERY, "ok", 0, 2)]
    assert not rec.kinds("unmeasured")


def test_tls_and_compression_are_not_measured_and_pass_untouched():
    for caps, reason in ((CAPS | F.CLIENT_SSL, "TLS"), (CAPS | F.CLIENT_COMPRESS, "compressed")):
        rec = Recorder()
        s = Session([rec], rewriter=aurora.QueryRewriter(aurora.rewrites("7")))
        s.from_server(GREETING)
        tail = F.packet_bytes(0, b"\x03" + aurora.HOST_ID_QUERY.encode())
        stream = _handshake(caps) + tail
        assert s.from_client(stream) == stream
        assert s.from_client(tail) == tail
        assert s.phase == UNMEASURED and reason in s.reason
        assert rec.kinds("unmeasured") == [("unmeasured", s.reason)]


def test_the_aurora_rewriter_on_the_framing_rewrites_packets_split_anywhere():
    rewriter = aurora.QueryRewriter(aurora.rewrites("7"))
    s = _session_up(rewriter=rewriter)
    query = F.packet_bytes(0, b"\x03" + aurora.HOST_ID_QUERY.encode())
    other = F.packet_bytes(0, b"\x03SELECT 1")
    big = F.packet_bytes(0, b"\x03SELECT '" + b"x" * 70000 + b"'")
    stream = other + query + other + big
    out = b"".join(s.from_client(stream[i:i + 3]) for i in range(0, len(stream), 3))
    new = aurora.rewrites("7")[aurora.HOST_ID_QUERY].encode()
    assert out == other + F.packet_bytes(0, b"\x03" + new) + other + big
    assert rewriter.rewritten == 1


def _random_packet(rng):
    kind = rng.random()
    if kind < 0.3:
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
    elif kind < 0.6:
        payload = bytes((rng.choice([0x00, 0xFF, 0xFE, 0xFB, 0x01, 0x03, 0x16, 0x17]),)) + \
            bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 12)))
    else:
        payload = b"\x03" + rng.choice([b"INSERT INTO t VALUES (1)", b"COMMIT", b"SELECT 1", b"/*", b"`"])
    data = F.packet_bytes(rng.randint(0, 3), payload)
    if rng.random() < 0.2:  # truncated, or a lying length
        data = data[:rng.randint(0, len(data))] if rng.random() < 0.5 else \
            rng.randint(0, 0xFFFFFF).to_bytes(3, "little") + data[3:]
    return data


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_random_and_truncated_packets_never_raise_and_bytes_flow_untouched(seed):
    rng = random.Random(seed)
    unmeasured = 0
    for _ in range(800):
        rec = Recorder()
        s = Session([rec], rewriter=aurora.QueryRewriter(aurora.rewrites("1")) if rng.random() < 0.5 else None)
        if rng.random() < 0.7:
            s.from_server(GREETING)
            s.from_client(_handshake())
            s.from_server(F.packet_bytes(2, b"\x00\x00\x00\x02\x00\x00\x00"))
        sent = b""
        for _ in range(rng.randint(1, 12)):
            data = _random_packet(rng)
            cut = rng.randint(0, len(data))
            if rng.random() < 0.5:
                out = s.from_client(data[:cut]) + s.from_client(data[cut:])
                if s.rewriter is None:
                    assert out == data
                sent += out
            else:
                s.from_server(data[:cut])
                s.from_server(data[cut:])
        s.close()
        if rec.kinds("unmeasured"):
            unmeasured += 1
            assert len(rec.kinds("unmeasured")) == 1 and s.reason
    assert unmeasured > 50  # the fuzz did reach the "not measured" path


def test_classify_reads_the_leading_keyword_only():
    assert classify(b"REPLACE LOW_PRIORITY INTO `a`.`b` SET x=1").insert_table == "a.b"
    assert classify(b"update t set a=1").kind == "write"
    assert classify(b"\x00\xff garbage").kind == "other"
    assert classify(b"/* unterminated").kind == "other"


# --- real clients through a real proxy -------------------------------------------------------
@pytest.fixture
def observed(mariadb):
    recorders = []

    def factory(peer):
        rec = Recorder()
        rec.peer = peer
        recorders.append(rec)
        return Session([rec])

    proxy = FaultProxy("127.0.0.1", 0, mariadb.host, mariadb.port, name="wire", session=factory).start()
    yield proxy, recorders
    proxy.stop()


def test_pymysql_through_the_proxy_is_read_from_the_wire(observed, mariadb):
    proxy, recorders = observed
    conn = pymysql.connect(host=proxy.address[0], port=proxy.address[1], user=mariadb.user,
                           password=mariadb.password, database=mariadb.database, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS wire_framing (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO wire_framing (v) VALUES (1)")
        last = cur.lastrowid
        cur.execute("SELECT COUNT(*) FROM wire_framing")
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("SELECT * FROM no_such_table_here")
        conn.ping()
    finally:
        conn.close()
    rec = wait_for(lambda: recorders and recorders[0].kinds("close") and recorders[0], message="session closed")
    hs = rec.kinds("handshake")[0][1]
    assert hs.user == mariadb.user and hs.database == mariadb.database
    assert hs.attributes.get("_client_name") == "pymysql"
    answers = [(a[1], a[2].kind if a[2] else None, a[2].last_insert_id if a[2] else None)
               for a in rec.kinds("answer")]
    assert (F.COM_QUERY, "ok", last) in answers
    assert (F.COM_QUERY, "result", 0) in answers
    assert any(a[2] and a[2].error_code == 1146 for a in rec.kinds("answer"))
    assert (F.COM_PING, "ok", 0) in answers
    assert [c[1] for c in rec.kinds("command")][-1] == F.COM_QUIT
    assert not rec.kinds("unmeasured")
    assert rec.peer[0] == "127.0.0.1"


def test_garbage_to_the_proxy_leaves_it_serving(observed, mariadb):
    proxy, recorders = observed
    rng = random.Random(7)
    for _ in range(30):
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.recv(4096)  # the server's greeting
            try:
                sock.sendall(b"".join(_random_packet(rng) for _ in range(20)))
                sock.settimeout(2)
                sock.recv(4096)
            except OSError:
                pass
    conn = pymysql.connect(host=proxy.address[0], port=proxy.address[1], user=mariadb.user,
                           password=mariadb.password, database=mariadb.database)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)
    finally:
        conn.close()
    wait_for(lambda: proxy.connection_count() == 0, message="every connection forgotten")
    assert sum(1 for r in recorders if r.kinds("unmeasured")) >= 10
