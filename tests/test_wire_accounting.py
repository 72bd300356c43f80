"""Wire accounting: real clients (PyMySQL, mysql-connector, the mysql CLI) through a real proxy to the machine's MariaDB."""
import os
import socket
import subprocess
import sys

import pymysql
import pytest

from conftest import wait_for
from _wire_fixture import accounted_proxy, snapshot
from fiswatch.lab.wire import framing as F


@pytest.fixture
def accounted(mariadb):
    with accounted_proxy(mariadb, "acct", "CREATE TABLE IF NOT EXISTS wire_acct (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)",
                         "CREATE TABLE IF NOT EXISTS wire_nokey (v INT)") as pair:
        yield pair


def _me(snap, pid=None):
    pid = os.getpid() if pid is None else pid
    return next((c for c in snap["clients"] if c["pid"] == pid), None)


def test_pymysql_writes_transactions_errors_and_ids_are_accounted(accounted, mariadb):
    proxy, ledger = accounted
    conn = pymysql.connect(host=proxy.address[0], port=proxy.address[1], user=mariadb.user,
                           password=mariadb.password, database=mariadb.database, autocommit=True)
    ids = []
    try:
        cur = conn.cursor()
        for _ in range(3):  # autocommit: each OK is an acknowledged write
            cur.execute("INSERT INTO wire_acct (v) VALUES (1)")
            ids.append(cur.lastrowid)
        cur.execute("BEGIN")
        cur.execute("INSERT INTO wire_acct (v) VALUES (2)")
        rolled_back = cur.lastrowid
        cur.execute("ROLLBACK")
        cur.execute("START TRANSACTION")
        cur.execute("INSERT INTO wire_acct (v) VALUES (3), (4)")
        ids.extend([cur.lastrowid, cur.lastrowid + 1])
        cur.execute("UPDATE wire_acct SET v = 5 WHERE id = %s", (ids[0],))
        cur.execute("COMMIT")
        cur.execute("INSERT INTO wire_nokey (v) VALUES (1)")
        cur.execute("SELECT COUNT(*) FROM wire_acct")
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("INSERT INTO no_such_table (v) VALUES (1)")
    finally:
        conn.close()
    me = wait_for(lambda: (lambda c: c if c and c["open"] == 0 else None)(_me(snapshot(proxy, ledger))),
                  message="this process's connection closed")
    assert me["connects"] == 1 and me["instances"] == {"acct": 1} and me["user"] == mariadb.user
    assert me["name"] == "pymysql" and "python" in me["cmdline"]
    assert me["acked"] == 3 + 2 + 1  # statements: 3 autocommit inserts, the committed insert + update, the keyless insert
    table = "acct/%s.wire_acct" % mariadb.database
    got = sorted(i for first, rows in me["inserts"][table] for i in range(first, first + rows))
    assert got == sorted(ids) and rolled_back not in got
    track = me["endpoints"]["acct"]
    assert track["errors"] == {"1146": 1} and track["last_error"][0] == 1146 and track["refused"] == 0
    assert (track["rolled_back"], track["rolled_back_writes"]) == (1, 1)  # the explicit ROLLBACK, its insert
    assert me["unverifiable"] == {"UPDATE/DELETE/LOAD (no id to look up)": 1, "INSERT without an auto-increment id": 1}
    assert track["segments"] and track["segments"][0][0] <= track["segments"][-1][1]
    assert not me["unmeasured"]


def test_mysql_connector_prepared_statements_are_accounted(accounted, mariadb):
    import mysql.connector

    proxy, ledger = accounted
    conn = mysql.connector.connect(host=proxy.address[0], port=proxy.address[1], user=mariadb.user,
                                   password=mariadb.password, database=mariadb.database, autocommit=True,
                                   use_pure=True, ssl_disabled=True)
    try:
        cur = conn.cursor(prepared=True)
        ids = []
        for v in range(4):
            cur.execute("INSERT INTO wire_acct (v) VALUES (?)", (v,))
            ids.append(cur.lastrowid)
        cur.close()
    finally:
        conn.close()
    me = wait_for(lambda: (lambda c: c if c and c["open"] == 0 else None)(_me(snapshot(proxy, ledger))),
                  message="this process's connection closed")
    assert me["acked"] == 4
    got = [i for first, rows in me["inserts"]["acct/%s.wire_acct" % mariadb.database] for i in range(first, first + rows)]
    assert got == ids
    assert not me["unmeasured"], me["unmeasured"]


def test_the_mysql_cli_in_a_loop_is_one_process_per_run_and_tls_is_not_measured(accounted, mariadb):
    proxy, ledger = accounted
    env = dict(os.environ, MYSQL_PWD=mariadb.password)
    base = ["mysql", "-h", proxy.address[0], "-P", str(proxy.address[1]), "-u", mariadb.user, mariadb.database]
    for _ in range(3):
        child = subprocess.run(base + ["--skip-ssl", "-e", "INSERT INTO wire_acct (v) VALUES (9); SELECT LAST_INSERT_ID()"],
                               env=env, capture_output=True, timeout=60)
        assert child.returncode == 0, child.stderr
    # a client asking for TLS (this server offers none, so by hand: the SSL request, then a ClientHello)
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.recv(4096)
        caps = F.CLIENT_PROTOCOL_41 | F.CLIENT_SECURE_CONNECTION | F.CLIENT_SSL
        sock.sendall(F.packet_bytes(1, caps.to_bytes(4, "little") + b"\x00\x00\x00\x01\x21" + b"\x00" * 23)
                     + b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + os.urandom(64))
    snap = wait_for(lambda: (lambda s: s if all(c["open"] == 0 for c in s["clients"]) and
                             sum(c["connects"] for c in s["clients"]) >= 4 else None)(snapshot(proxy, ledger)),
                    message="four closed connections")
    cli = [c for c in snap["clients"] if c["pid"] is not None and c["pid"] != os.getpid()]
    measured = [c for c in cli if c["acked"]]
    assert len(measured) == 3 and all(c["acked"] == 1 and c["connects"] == 1 for c in measured)
    assert all(os.getpid() in c["ancestors"] for c in measured)  # grouped under this process
    assert all("mysql" in (c["name"] + c["cmdline"]) for c in measured)
    unmeasured = [c for c in snap["clients"] if c["unmeasured"]]
    assert [list(c["unmeasured"]) for c in unmeasured] == [["TLS: the session is encrypted"]]
    assert unmeasured[0]["instances"] == {"acct": 1}


def test_a_process_without_pid_attribute_is_found_by_its_socket(accounted, mariadb):
    """A client that sends no `_pid`: the owner of the socket's inode (/proc) is found off the loop.

    The lookup scans /proc while the socket exists and is taken at the connection's next packet:
    the child goes on writing until the ledger names it (on a loaded machine the scan can
    outlast a 2 s client)."""
    proxy, ledger = accounted
    code = ("import pymysql, select, sys, time\n"
            "c = pymysql.connect(host=%r, port=%d, user=%r, password=sys.stdin.readline().strip(), database=%r,"
            " autocommit=True, defer_connect=True)\n"
            "c._connect_attrs = {}\n"
            "c.connect()\n"
            "cur = c.cursor()\n"
            "for _ in range(40):\n"
            "    cur.execute('INSERT INTO wire_acct (v) VALUES (7)'); time.sleep(0.05)\n"
            # the found owner is taken at the connection's next packet: go on writing until told
            "while not select.select([sys.stdin], [], [], 0.05)[0]:\n"
            "    cur.execute('INSERT INTO wire_acct (v) VALUES (7)')\n"
            "c.close()\n" % (proxy.address[0], proxy.address[1], mariadb.user, mariadb.database))
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        child.stdin.write((mariadb.password + "\n").encode())
        child.stdin.flush()

        def found():
            mine = _me(snapshot(proxy, ledger), child.pid)
            return mine if mine is not None and mine["acked"] >= 40 else None
        mine = wait_for(found, timeout=60, message="the child's connection named by its socket's owner")
        child.communicate(b"close\n", timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert child.returncode == 0
    assert mine is not None and mine["acked"] >= 1 and mine["name"] == ""  # no attributes at all


def test_a_64mb_query_many_connections_and_a_death_mid_transaction_leave_the_proxy_serving(accounted, mariadb):
    proxy, ledger = accounted
    conn = pymysql.connect(host=proxy.address[0], port=proxy.address[1], user=mariadb.user,
                           password=mariadb.password, database=mariadb.database, max_allowed_packet=80 * 1024 * 1024)
    try:
        with pytest.raises(pymysql.err.MySQLError):
            conn.cursor().execute("SELECT LENGTH('%s')" % ("x" * (64 * 1024 * 1024)))
    finally:
        try:
            conn.close()
        except Exception:
            pass
    socks = []
    for _ in range(300):  # connect, read the greeting, hang up: no packet of theirs is complete
        s = socket.create_connection(proxy.address, timeout=10)
        socks.append(s)
    for s in socks:
        s.recv(100)
        s.close()
    code = ("import pymysql, os, sys\n"
            "c = pymysql.connect(host=%r, port=%d, user=%r, password=sys.stdin.readline().strip(), database=%r)\n"
            "cur = c.cursor(); cur.execute('BEGIN'); cur.execute('INSERT INTO wire_acct (v) VALUES (66)')\n"
            "os._exit(9)\n" % (proxy.address[0], proxy.address[1], mariadb.user, mariadb.database))
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    child.communicate((mariadb.password + "\n").encode(), timeout=60)
    assert child.returncode == 9
    wait_for(lambda: proxy.connection_count() == 0, message="every connection closed and forgotten")
    snap = snapshot(proxy, ledger)
    dead = _me(snap, child.pid)
    assert dead is not None and dead["acked"] == 0 and dead["inserts"] == {}  # never committed: nothing acknowledged
    assert dead["endpoints"]["acct"]["dropped"] == 1 and dead["open"] == 0
    assert (dead["endpoints"]["acct"]["rolled_back"], dead["endpoints"]["acct"]["rolled_back_writes"]) == (1, 1)
    assert all(c["open"] == 0 for c in snap["clients"])
    conn = pymysql.connect(host=proxy.address[0], port=proxy.address[1], user=mariadb.user,
                           password=mariadb.password, database=mariadb.database)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    finally:
        conn.close()
