"""The lab's RDS Proxy (lab/rdsproxy*.py, docs/rdsproxy.md), against real MariaDB servers.

First the proxy alone in front of the test server (login, answers as the server sent them, bad
input, the borrow timeout behind a fenced instance), then a lab started with `--proxy`: PyMySQL
through an Aurora failover beside a client that follows DNS, idle sessions kept, a statement in
flight and an open transaction failed with 1105, 200 idle sessions through a failover."""
import os
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import wait_for

sys.path.insert(0, os.path.dirname(__file__))
from _lab_fixture import answer_of, private_lab  # noqa: E402


# --- the proxy alone -------------------------------------------------------------------------------
@pytest.fixture()
def alone(mariadb):
    """An RdsProxy on 127.0.0.1 in front of the test server (its only instance, the writer)."""
    from fiswatch.lab.loop import ProxyLoop
    from fiswatch.lab.rdsproxy import RdsProxy
    from fiswatch.lab.rdsproxy_backend import Instance

    loop = ProxyLoop("test-rdsproxy")
    lines = []
    proxy = RdsProxy(("127.0.0.1", 0), [Instance("test", (mariadb.host, mariadb.port))],
                     {mariadb.user: mariadb.password}, loop, log=lines.append, borrow_timeout=5).start()
    proxy.lines = lines
    wait_for(lambda: proxy.stats()["writer"] == "test", 30, message="the proxy finds the test server writable")
    yield proxy
    proxy.stop()
    loop.stop()


def _connect(address, mariadb, **kw):
    import pymysql

    kw.setdefault("read_timeout", 30)
    return pymysql.connect(host=address[0], port=address[1], user=mariadb.user, password=mariadb.password,
                           database=mariadb.database, connect_timeout=10, **kw)


def _query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall(), cur.description


def test_answers_are_the_servers_own(alone, mariadb):
    via = _connect(alone.listen, mariadb)
    direct = _connect((mariadb.host, mariadb.port), mariadb)
    sql = ("SELECT 1 AS one, NULL AS nothing, 'é' AS text, CAST(2.5 AS DECIMAL(4,2)) AS d, "
           "REPEAT('x', 70000) AS big UNION ALL SELECT 2, 3, 'b', 1.25, 'y'")
    assert _query(via, sql) == _query(direct, sql)
    assert via.thread_id() != _query(via, "SELECT CONNECTION_ID()")[0][0][0]  # the proxy's own id
    import pymysql

    multi = _connect(alone.listen, mariadb, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    with multi.cursor() as cur:  # two result sets in one answer (SERVER_MORE_RESULTS_EXISTS)
        cur.execute("SELECT 1; SELECT 2")
        assert cur.fetchall() == ((1,),) and cur.nextset() and cur.fetchall() == ((2,),)
    multi.close()

    with pytest.raises(pymysql.err.ProgrammingError) as err:
        _query(via, "SELECT * FROM no_such_table")
    assert err.value.args[0] == 1146
    assert _query(via, "SELECT 42")[0] == ((42,),)
    via.close()
    direct.close()


def test_an_answer_bigger_than_the_proxys_buffer_arrives_whole_and_the_session_serves_on(alone, mariadb):
    """16 MB of rows to a client that reads none yet: the proxy pauses reading the server (over HIGH_WATER
    unsent), then every row arrives, in order, and the session serves on."""
    import pymysql

    paused = alone.stats()["answers_paused"]
    via = _connect(alone.listen, mariadb)
    with via.cursor(pymysql.cursors.SSCursor) as cur:  # rows read only when fetched
        cur.execute("SELECT REPEAT(CHAR(65 + seq MOD 26 USING ascii), 65536) FROM seq_0_to_255")
        wait_for(lambda: alone.stats()["answers_paused"] > paused, 30, message="the proxy pauses the server")
        rows = [r[0] for r in cur.fetchall_unbuffered()]
    assert rows == [chr(65 + i % 26) * 65536 for i in range(256)]
    assert _query(via, "SELECT 42")[0] == ((42,),)
    via.close()


def test_wrong_password_is_refused_with_1045(alone, mariadb):
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(host=alone.listen[0], port=alone.listen[1], user=mariadb.user, password="wrong",
                        connect_timeout=10)
    assert err.value.args[0] == 1045
    assert alone.stats()["denied"] == 1


def _read_packets(sock, timeout=10.0):
    """Every packet the proxy sends until it closes the socket: [(seq, payload)]."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    packets = []
    while len(data) >= 4:
        length = int.from_bytes(data[:3], "little")
        packets.append((data[3], data[4:4 + length]))
        data = data[4 + length:]
    return packets


def _send_ignoring_reset(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


def test_garbage_and_a_64_mb_packet_get_one_error_each_and_the_proxy_serves_on(alone, mariadb):
    garbage = socket.create_connection(alone.listen, timeout=10)
    garbage.sendall(b"\x10\x00\x00\x01" + os.urandom(16))  # a "handshake" of random bytes
    packets = _read_packets(garbage)
    assert [p[0] for p in packets[1:]] == [2] and packets[1][1][:3] == b"\xff\x13\x04"  # greeting, ERR 1043
    garbage.close()

    big = _connect(alone.listen, mariadb)
    sock = big._sock
    chunk = b"x" * 0xFFFFFF
    command = b"".join(b"\xff\xff\xff" + bytes((n,)) + (b"\x03" + chunk[1:] if n == 0 else chunk) for n in range(4))
    sender = threading.Thread(target=lambda: _send_ignoring_reset(sock, command + b"\x00\x00\x00\x04"), daemon=True)
    sender.start()  # a 64 MB COM_QUERY: four 16 MB packets and an empty last one
    sock.settimeout(10)
    answer = sock.recv(4096)
    assert answer[4:7] == b"\xff" + struct.pack("<H", 1153), answer[:40]
    assert sock.recv(4096) == b""  # then closed
    sender.join(30)
    big._sock = None

    unknown = _connect(alone.listen, mariadb)
    unknown._sock.sendall(b"\x01\x00\x00\x00\x7f")  # an unknown command: ERR 1047, the session lives
    unknown._sock.settimeout(10)
    assert unknown._sock.recv(4096)[4:7] == b"\xff" + struct.pack("<H", 1047)
    assert _query(unknown, "SELECT 7")[0] == ((7,),)
    assert _query(_connect(alone.listen, mariadb), "SELECT 8")[0] == ((8,),)
    stats = alone.stats()
    assert stats["bad_input"] == 2 and stats["too_big"] == 1, stats
    assert not [line for line in alone.lines if "internal error" in line], alone.lines


def _packets_until(sock, enough, timeout=10.0):
    """The packets [(seq, payload)] the proxy sends until `enough(packets)` says so."""
    sock.settimeout(timeout)
    data, packets = b"", []
    while not enough(packets):
        chunk = sock.recv(65536)
        assert chunk, "the proxy closed the session; so far %r" % packets
        data += chunk
        while len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:3], "little"):
            length = int.from_bytes(data[:3], "little")
            packets.append((data[3], data[4:4 + length]))
            data = data[4 + length:]
    return packets


def test_commands_sent_before_the_answer_is_in_are_answered_in_order(alone, mariadb):
    """A client that sends its next commands while an answer is still coming (the session reads commands
    by callbacks and holds these): each is answered in its turn, a refused one too (COM_CHANGE_USER:
    1235); then a packet out of order ends the session with 1156."""
    from fiswatch.lab.rdsproxy_wire import raw

    conn = _connect(alone.listen, mariadb, autocommit=True)
    sock = conn._sock
    sock.sendall(raw(0, b"\x03SELECT SLEEP(0.3), 1") + raw(0, b"\x11nobody\x00") + raw(0, b"\x03SELECT 2")
                 + raw(0, b"\x0e"))

    def rows_and_errors(packets):
        return [p for _s, p in packets if p[:1] == b"\xff" or p[:2] in (b"\x010", b"\x012")]

    packets = _packets_until(sock, lambda packets: len(rows_and_errors(packets)) == 3
                             and packets[-1][1][:1] == b"\x00")  # the last: COM_PING's OK
    assert [p[:3] if p[:1] == b"\xff" else p[:2] for p in rows_and_errors(packets)] == [
        b"\x010", b"\xff" + struct.pack("<H", 1235), b"\x012"]
    assert packets[-1] == (1, packets[-1][1]) and len([p for p in packets if p[0] == 1]) == 4, packets
    sock.sendall(raw(5, b"\x0e"))  # a command must start at sequence id 0
    packets = _read_packets(sock)
    assert [(s, p[:3]) for s, p in packets] == [(1, b"\xff" + struct.pack("<H", 1156))]
    conn._sock = None
    assert not [line for line in alone.lines if "internal error" in line], alone.lines


def test_pinning_and_tracking_follow_aws_list_as_the_labs_assumption():
    from fiswatch.lab.rdsproxy_effect import statement_effect

    assert statement_effect("SET autocommit=0")[:2] == ("track", "autocommit")
    assert statement_effect("SET NAMES utf8mb4 COLLATE utf8mb4_general_ci")[:2] == ("track", "names")
    assert statement_effect("SET @@session.sql_mode='', time_zone='+00:00'")[:2] == ("track", "sql_mode,time_zone")
    assert statement_effect("SET sql_mode='', @x=1") == ("pin", "SET of @x")
    assert statement_effect("CREATE TEMPORARY TABLE t (i INT)") == ("pin", "temporary table")
    assert statement_effect("LOCK TABLES test WRITE") == ("pin", "LOCK TABLES")
    assert statement_effect("SELECT GET_LOCK('a', 1)") == ("pin", "user lock (GET_LOCK)")
    assert statement_effect("PREPARE s FROM 'SELECT 1'") == ("pin", "prepared statement (PREPARE)")
    assert statement_effect("SELECT 1") is None and statement_effect("") is None


def test_no_writer_queues_then_fails_after_the_borrow_timeout(mariadb):
    import pymysql

    from fiswatch.lab.loop import ProxyLoop
    from fiswatch.lab.proxy import FaultProxy
    from fiswatch.lab.rdsproxy import RdsProxy
    from fiswatch.lab.rdsproxy_backend import Instance

    loop = ProxyLoop("test-rdsproxy-borrow")
    fence = FaultProxy("127.0.0.1", 0, mariadb.host, mariadb.port, loop=loop).start()
    proxy = RdsProxy(("127.0.0.1", 0), [Instance("fenced", fence.address)], {mariadb.user: mariadb.password},
                     loop, borrow_timeout=2.0).start()
    try:
        wait_for(lambda: proxy.stats()["writer"] == "fenced", 30, message="writer found")
        conn = _connect(proxy.listen, mariadb)
        fence.set_mode("blackhole")
        wait_for(lambda: proxy.stats()["writer"] is None, 30, message="writer lost")
        t0 = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as err:
            _query(conn, "SELECT 1")
        assert err.value.args[0] == 9501 and 1.5 <= time.monotonic() - t0 < 30
        assert proxy.stats()["borrow_timeouts"] == 1
        fence.set_mode("pass")  # new connections to the instance work again: the writer is back
        wait_for(lambda: proxy.stats()["writer"] == "fenced", 30, message="writer found again")
        assert _query(_connect(proxy.listen, mariadb), "SELECT 3")[0] == ((3,),)
    finally:
        proxy.stop()
        fence.stop()
        loop.stop()


# --- a lab with --proxy --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plab(tmp_path_factory):
    with private_lab(tmp_path_factory, "plab", rds_proxy=True) as info:
        yield info


IDLE_SESSIONS = 1000  # issue 22: "1,000 idle sessions on the proxy through a failover"


def _lab_connect(info, host, **kw):
    import pymysql

    ep = info.endpoint("aurora")
    kw.setdefault("read_timeout", 30)
    kw.setdefault("connect_timeout", 5)
    return pymysql.connect(host=host, port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, **kw)


def _proxy_ip(info):
    kind, addresses, _cnames, _ttl = answer_of(info, info.endpoint("aurora-proxy").host)
    assert kind == "ok" and len(addresses) == 1
    return addresses[0]


@pytest.mark.lab
def test_status_names_the_proxy_endpoint_at_a_fixed_address(plab):
    import json
    import subprocess

    from conftest import ROOT

    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", plab.dir, "--json"],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    endpoints = {e["name"]: e for e in json.loads(out.stdout)["endpoints"]}
    assert endpoints["aurora-proxy"]["host"] == "fiswatch-lab.proxy-c0ffee0c0ffe.lab-1.rds.amazonaws.com"
    assert _proxy_ip(plab).endswith(".50")


@pytest.mark.lab
def test_watch_lab_runs_each_backend_by_name_and_via_the_proxy(plab, tmp_path):
    import json
    import subprocess

    from conftest import ROOT

    record = str(tmp_path / "run.jsonl")
    out = subprocess.run([sys.executable, "-m", "fiswatch", "watch", "--lab", plab.dir, "--backend", "pymysql",
                          "--duration", "4", "--plain", "--record", record], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    writes = {}
    with open(record) as fh:
        for line in fh:
            event = json.loads(line)
            if event.get("event") == "write":
                writes[event.get("endpoint")] = writes.get(event.get("endpoint"), 0) + 1
    assert writes.get("aurora", 0) > 5 and writes.get("aurora-proxy", 0) > 5, writes


class _Probe(threading.Thread):
    """PyMySQL writing a row every 50 ms with read_timeout=1 (the workshop's settings), reconnecting
    to `host()` after any error; keeps the longest gap between two acknowledged writes."""

    def __init__(self, info, host):
        super().__init__(daemon=True)
        self.info, self.host = info, host
        self.stop = threading.Event()
        self.acked, self.errors, self.gap, self.last = [], 0, 0.0, None

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = _lab_connect(self.info, self.host(), read_timeout=1, write_timeout=1, autocommit=True,
                                        connect_timeout=1)
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO test (value) VALUES (1)")
                    self.acked.append(cur.lastrowid)
                now = time.monotonic()
                if self.last is not None:
                    self.gap = max(self.gap, now - self.last)
                self.last = now
            except Exception:
                self.errors += 1
                conn = None
            self.stop.wait(0.05)
        if conn is not None:
            conn.close()


@pytest.mark.lab
def test_failover_through_the_proxy_beside_dns(plab):
    """One Aurora failover (the demo's `fast` profile): PyMySQL via the proxy and via the cluster name,
    an idle session, a statement in flight, an open transaction, a pinned session, IDLE_SESSIONS idle sessions
    (the issue's 1,000): all kept, none leaked, no traceback in the lab's logs."""
    import pymysql

    from fiswatch.lab.api import failover, lab_status

    proxy_ip = _proxy_ip(plab)
    cluster = plab.endpoint("aurora").host

    def by_dns():
        _kind, addresses, _c, _t = answer_of(plab, cluster)
        return addresses[0] if addresses else "127.0.0.1"

    idle = _lab_connect(plab, proxy_ip)
    idle_id, old_port = idle.thread_id(), _query(idle, "SELECT @@port")[0][0][0]
    in_tx = _lab_connect(plab, proxy_ip)
    _query(in_tx, "INSERT INTO test (value) VALUES (2)")  # autocommit off: a transaction is open
    pinned = _lab_connect(plab, proxy_ip, autocommit=True)
    _query(pinned, "SET @mine = 1")
    with ThreadPoolExecutor(8) as pool:  # more sessions than the writer takes (max_connections)
        # (plaintext: PyMySQL 1.2 makes a TLS context, ~20 ms of CPU, for every connect it may encrypt)
        many = list(pool.map(lambda _: _lab_connect(plab, proxy_ip, autocommit=True, ssl_disabled=True),
                             range(IDLE_SESSIONS)))
    state = lab_status(plab.dir)
    flight = {}

    def sleeper():
        conn = _lab_connect(plab, proxy_ip)
        flight["started"] = time.monotonic()
        try:
            _query(conn, "SELECT SLEEP(8)")
            flight["error"] = None
        except pymysql.err.MySQLError as exc:
            flight["error"] = exc.args[0]
        flight["ended"] = time.monotonic()

    probes = {"proxy": _Probe(plab, lambda: proxy_ip), "direct": _Probe(plab, by_dns)}
    for probe in probes.values():
        probe.start()
    wait_for(lambda: all(len(p.acked) >= 5 for p in probes.values()), 30, message="both probes write")
    sleeping = threading.Thread(target=sleeper, daemon=True)
    sleeping.start()
    wait_for(lambda: "started" in flight, 30, message="SLEEP in flight")
    time.sleep(0.5)
    failover(plab.dir, "aurora", profile="fast")
    wait_for(lambda: all(p.last is not None and time.monotonic() - p.last < 1.0 for p in probes.values()), 60,
             message="both probes write again after the failover")
    for probe in probes.values():
        probe.stop.set()
        probe.join(10)
    sleeping.join(30)

    assert flight["error"] == 1105 and flight["ended"] - flight["started"] < 7.5, flight
    direct, via = probes["direct"].gap, probes["proxy"].gap
    print("PyMySQL gap through one Aurora failover: direct %.2fs, via the RDS Proxy %.2fs (%.0f %% shorter)"
          % (direct, via, 100 * (1 - via / direct)))
    assert via < direct / 2, "gap via the proxy %.1fs, direct %.1fs" % (via, direct)
    assert _query(idle, "SELECT @@port")[0][0][0] != old_port and idle.thread_id() == idle_id
    for conn, what in ((in_tx, "open transaction"), (pinned, "pinned session")):
        with pytest.raises(pymysql.err.OperationalError) as err:
            _query(conn, "SELECT 1")
        assert err.value.args[0] == 1105, what
    with ThreadPoolExecutor(8) as pool:  # all kept, on the new writer
        assert all(rows == ((1,),) for rows, _ in pool.map(lambda c: _query(c, "SELECT 1"), many))
    check = _lab_connect(plab, proxy_ip)
    for probe in probes.values():
        ids = probe.acked
        found = _query(check, "SELECT COUNT(*) FROM test WHERE id IN (%s)" % ",".join(map(str, ids)))[0][0][0]
        assert found == len(ids), "acknowledged writes lost"
    for conn in many + [idle, check]:
        conn.close()
    wait_for(lambda: _open_sessions(plab) == 0, 30,
             message="every closed session gone from the proxy")
    assert state.endpoint("aurora-proxy")
    for name in ("daemon.log", "lab.log"):
        path = os.path.join(plab.dir, name)
        text = open(path, errors="replace").read() if os.path.exists(path) else ""
        assert "Traceback" not in text and "internal error" not in text, name


@pytest.mark.lab
def test_the_rds_proxy_keeps_a_session_across_an_rds_failover(plab):
    """`rds-proxy` (issue 22: "of the Aurora cluster (and of RDS)"): PyMySQL through it, idle across one
    `lab failover rds`, runs its next statements on the new primary: same socket, same connection id."""
    from fiswatch.lab.api import failover
    from fiswatch.lab.control import request
    from fiswatch.lab.layout import CONTROL_SOCKET

    ep = plab.endpoint("rds-proxy")
    assert ep.host == "fiswatch-lab-mysql-proxy.proxy-c0ffee0c0ffe.lab-1.rds.amazonaws.com"
    kind, addresses, _cnames, _ttl = answer_of(plab, ep.host)
    assert kind == "ok" and len(addresses) == 1 and addresses[0].endswith(".51"), addresses

    def rds_stats():
        return request(os.path.join(plab.dir, CONTROL_SOCKET), "state")["rds_proxy"]["rds"]

    conn = _lab_connect(plab, addresses[0], autocommit=True)
    conn_id, old_port = conn.thread_id(), _query(conn, "SELECT @@port")[0][0][0]
    _query(conn, "INSERT INTO test (value) VALUES (22)")
    row = conn.insert_id()
    logins = rds_stats()["sessions"]
    failover(plab.dir, "rds", profile="fast")
    port, read_only = _query(conn, "SELECT @@port, @@read_only")[0][0]
    assert port != old_port and read_only == 0, (port, old_port, read_only)  # the new primary, writable
    _query(conn, "INSERT INTO test (value) VALUES (23)")
    assert _query(conn, "SELECT COUNT(*) FROM test WHERE id = %d" % row)[0][0][0] == 1
    stats = rds_stats()
    assert conn.thread_id() == conn_id and stats["sessions"] == logins and stats["writer_changes"] >= 2, stats
    conn.close()


def _open_sessions(info):
    from fiswatch.lab.control import request
    from fiswatch.lab.layout import CONTROL_SOCKET

    return request(os.path.join(info.dir, CONTROL_SOCKET), "state")["rds_proxy"]["open"]


def test_doctests():
    import doctest

    from fiswatch.lab import rdsproxy_effect, rdsproxy_wire
    from fiswatch.report import model

    for module in (rdsproxy_wire, rdsproxy_effect, model):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_the_report_counts_auroras_failovers_for_the_proxy_endpoint():
    from fiswatch.report.model import LabFailover, failovers_for

    fos = [LabFailover(target="aurora", crash=False, started=1.0, outage_start=1.0, outage_end=3.0),
           LabFailover(target="rds", crash=False, started=5.0, outage_start=5.0, outage_end=6.0)]
    endpoints = ["aurora", "rds", "aurora-proxy"]
    assert [n for n, _f in failovers_for(fos, "aurora-proxy", endpoints)] == [1]
    assert [n for n, _f in failovers_for(fos, "rds", endpoints)] == [2]


def _patch(info, *extra):
    import json
    import subprocess

    from conftest import ROOT

    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "patch", "aurora", "--dir", info.dir, "--json"]
                         + list(extra), capture_output=True, text=True, timeout=240,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.lab
def test_zero_downtime_patching_keeps_idle_sessions_and_their_variables(plab):
    import pymysql

    ip = _proxy_ip(plab)
    idle = _lab_connect(plab, ip, autocommit=True)
    _query(idle, "SET time_zone = '+03:00'")
    _query(idle, "INSERT INTO test (value) VALUES (5)")
    assert _query(idle, "SELECT LAST_INSERT_ID()")[0][0][0] > 0
    idle_id = idle.thread_id()
    uptime = int(_query(idle, "SHOW GLOBAL STATUS LIKE 'Uptime'")[0][0][1])
    in_tx = _lab_connect(plab, ip)
    _query(in_tx, "INSERT INTO test (value) VALUES (424242)")  # autocommit off: left open
    temp = _lab_connect(plab, ip, autocommit=True)
    _query(temp, "CREATE TEMPORARY TABLE scratch (i INT)")
    time.sleep(1.5)  # Uptime counts seconds: let it grow past what a fresh engine shows

    result = _patch(plab)
    assert result["zdp"] and result["proxy"], result
    assert result["sessions"].get("rolled back") == 1 and result["sessions"].get("dropped") == 1, result
    assert result["sessions"].get("kept", 0) >= 1, result

    assert idle.thread_id() == idle_id
    assert _query(idle, "SELECT @@time_zone")[0] == (("+03:00",),)  # replayed onto the new server session
    assert _query(idle, "SELECT LAST_INSERT_ID()")[0] == ((0,),)
    assert int(_query(idle, "SHOW GLOBAL STATUS LIKE 'Uptime'")[0][0][1]) < uptime + 1
    with pytest.raises(pymysql.err.OperationalError) as err:
        _query(in_tx, "SELECT 1")
    assert err.value.args[0] == 1105 and "rolled back" in err.value.args[1]
    assert _query(idle, "SELECT COUNT(*) FROM test WHERE value = 424242")[0] == ((0,),)
    with pytest.raises(pymysql.err.OperationalError) as err:
        _query(temp, "SELECT * FROM scratch")
    assert err.value.args[0] in (2006, 2013), err.value.args

    plain = _patch(plab, "--no-zdp")  # ZDP could not proceed: a plain restart drops every session
    assert not plain["zdp"] and plain["sessions"].get("dropped", 0) >= 1 and "kept" not in plain["sessions"]
    with pytest.raises(pymysql.err.OperationalError):
        _query(idle, "SELECT 1")
    assert _query(_lab_connect(plab, ip), "SELECT 1")[0] == ((1,),)  # and the proxy serves new sessions


def test_patch_without_a_lab_says_so_in_one_line(tmp_path):
    import subprocess

    from conftest import ROOT

    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "patch", "aurora", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 1 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    bad = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "patch", "rds", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
