"""The lab's RDS Proxy in the wire accounting (lab/rdsproxy_account.py, docs/rdsproxy.md): a program through
`aurora-proxy` is filed under its own process with the writes it was acknowledged, the proxy's own server
sessions under nobody, a transaction the proxy ends with 1105 is counted rolled back, and `lab exec` judges
a program writing through the proxy across a failover."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, wait_for

sys.path.insert(0, os.path.dirname(__file__))
from _lab_fixture import answer_of, private_lab  # noqa: E402
from _wire_fixture import lab_writer  # noqa: E402

pytestmark = pytest.mark.lab

PROGRAM = textwrap.dedent("""\
    import json, os, sys
    import pymysql
    conn = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3], password=os.environ["PW"],
                           database=sys.argv[4], autocommit=True, connect_timeout=5, read_timeout=30)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS acct_via (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
    ids = []
    for _ in range(5):
        cur.execute("INSERT INTO acct_via (v) VALUES (1)")
        ids.append(cur.lastrowid)
    conn.begin()
    for _ in range(3):
        cur.execute("INSERT INTO acct_via (v) VALUES (2)")
        ids.append(cur.lastrowid)
    conn.commit()
    conn.close()
    print(json.dumps({"pid": os.getpid(), "ids": ids}))
""")


@pytest.fixture(scope="module")
def plab(tmp_path_factory):
    with private_lab(tmp_path_factory, "placct", rds_proxy=True) as info:
        yield info


def _proxy_ip(info):
    kind, addresses, _cnames, _ttl = answer_of(info, info.endpoint("aurora-proxy").host)
    assert kind == "ok" and len(addresses) == 1
    return addresses[0]


def _wire(info):
    from fiswatch.lab import layout as L
    from fiswatch.lab.control import request

    return request(os.path.join(info.dir, L.CONTROL_SOCKET), "wire", timeout=10)["clients"]


def _client(info, pid):
    return next((c for c in _wire(info) if c["pid"] == pid), None)


def _connect(info, host, **kw):
    import pymysql

    ep = info.endpoint("aurora")
    return pymysql.connect(host=host, port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, connect_timeout=5, read_timeout=30, **kw)


def test_a_program_through_the_proxy_is_filed_under_its_own_pid_with_its_acknowledged_inserts(plab, tmp_path):
    ep = plab.endpoint("aurora")
    (tmp_path / "program.py").write_text(PROGRAM)
    out = subprocess.run([sys.executable, str(tmp_path / "program.py"), _proxy_ip(plab), str(ep.port), ep.user,
                          ep.database], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PW=ep.password.reveal()))
    assert out.returncode == 0, out.stderr
    ran = json.loads(out.stdout)
    mine = wait_for(lambda: _client(plab, ran["pid"]), 30, message="the program's process in the ledger")
    track = mine["endpoints"]["aurora"]  # filed under the cluster the proxy fronts
    assert track["acked"] == 8 and track["dropped"] == 0 and track["rolled_back"] == 0, track
    assert mine["instances"] == {"aurora-proxy": 1} and mine["open"] == 0, mine
    ranges = mine["inserts"]["aurora/%s.acct_via" % ep.database]
    filed = [first + i for first, rows in ranges for i in range(rows)]
    assert filed == ran["ids"]
    check = _connect(plab, _proxy_ip(plab))
    with check.cursor() as cur:
        cur.execute("SELECT id FROM acct_via WHERE id IN (%s)" % ",".join(map(str, filed)))
        assert sorted(r[0] for r in cur.fetchall()) == filed  # the ids really are in the table
    check.close()
    clients = _wire(plab)
    assert not [c for c in clients if c["pid"] == plab.pid], "the lab daemon filed as a client"
    proxy_ips = {_proxy_ip(plab), _proxy_ip(plab).rsplit(".", 1)[0] + ".51"}
    assert not [c for c in clients if c["address"].split(":")[0] in proxy_ips or c["key"].split(" ")[-1] in proxy_ips]


def test_a_transaction_the_proxy_ends_with_1105_is_counted_rolled_back_with_its_writes(plab):
    import pymysql

    from fiswatch.lab.api import failover

    def mine():
        return (_client(plab, os.getpid()) or {}).get("endpoints", {}).get("aurora", {})

    before = mine()
    in_tx = _connect(plab, _proxy_ip(plab))  # autocommit off: the INSERTs below leave a transaction open
    with in_tx.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS acct_tx (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO acct_tx (v) VALUES (1)")
        cur.execute("INSERT INTO acct_tx (v) VALUES (2)")
    failover(plab.dir, "aurora", profile="quick")
    with pytest.raises(pymysql.err.OperationalError) as err:
        with in_tx.cursor() as cur:
            cur.execute("SELECT 1")
    assert err.value.args[0] == 1105
    after = wait_for(lambda: mine() if mine().get("rolled_back", 0) > before.get("rolled_back", 0) else None, 30,
                     message="the transaction counted rolled back")
    assert after["rolled_back"] - before.get("rolled_back", 0) == 1
    assert after["rolled_back_writes"] - before.get("rolled_back_writes", 0) == 2
    assert after["acked"] == before.get("acked", 0)  # never acknowledged
    assert after["errors"].get("1105", 0) - before.get("errors", {}).get("1105", 0) == 1


def test_lab_exec_judges_a_program_writing_through_the_proxy_across_a_failover(plab, tmp_path):
    (tmp_path / "writer.py").write_text(lab_writer("acct_exec").replace("FISWATCH_LAB_AURORA_HOST",
                                                                        "FISWATCH_LAB_PROXY_HOST"))
    argv = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", plab.dir, "--failover", "aurora@4",
            "--profile", "quick", "--expect", "lost=0", "--expect", "recovered", "--json", str(tmp_path / "v.json"),
            "--", sys.executable, "writer.py", "12"]
    result = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT),
                            timeout=180, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "v.json").read_text())
    acked = doc["endpoints"]["aurora"]["acknowledged"]
    assert acked > 20 and doc["lost"]["checked"] == acked and doc["lost"]["lost"] == [], doc
    assert "lost writes: 0 of" in result.stderr


def test_a_transaction_a_patch_ends_through_the_proxy_is_reported_rolled_back_for_the_cluster(plab, tmp_path):
    """`lab exec --patch` of a program inside a transaction via aurora-proxy: the proxy's 1105 ends it; the
    verdict, the record and the report say it was rolled back on `aurora`, as by the cluster name."""
    from test_lab_gate import _gate
    from test_lab_patch_seen import OPEN_TRANSACTION

    (tmp_path / "txn.py").write_text(OPEN_TRANSACTION.replace("FISWATCH_LAB_AURORA_HOST", "FISWATCH_LAB_PROXY_HOST"))
    record = tmp_path / "run.jsonl"
    result = _gate(plab.dir, tmp_path, "--patch", "aurora@2", "--expect", "lost=0", "--record", str(record), "--",
                   sys.executable, "txn.py")
    assert result.returncode == 0, result.stderr
    text = "1 transaction rolled back (2 writes not acknowledged)"
    assert text in result.stderr and "lost writes: 0 of 2 acknowledged inserts" in result.stderr, result.stderr
    client = next(e for e in map(json.loads, record.read_text().splitlines()) if e.get("event") == "wire_client")
    assert client["probe"] == "aurora/program" and client["endpoint"] == "aurora", client
    assert (client["acked"], client["rolled_back"], client["rolled_back_writes"]) == (2, 1, 2)
    assert client["errors"].get("1105") == 1, client
    report = subprocess.run([sys.executable, "-m", "fiswatch", "report", str(record)], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert report.returncode == 0 and "  " + text in report.stdout.splitlines(), report.stdout


def test_a_refused_change_user_leaves_the_session_accounted(plab):
    """COM_CHANGE_USER gets 1235 from the proxy and the session serves on: its writes still count."""
    import pymysql

    def acked():
        return (_client(plab, os.getpid()) or {}).get("endpoints", {}).get("aurora", {}).get("acked", 0)

    conn = _connect(plab, _proxy_ip(plab), autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS acct_cu (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
    conn._execute_command(0x11, b"")  # PyMySQL has no change_user: the raw command
    with pytest.raises(pymysql.err.MySQLError) as err:
        conn._read_packet()
    assert err.value.args[0] == 1235
    before = acked()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO acct_cu (v) VALUES (1)")  # the next command: no login awaited
    wait_for(lambda: acked() == before + 1, 30, message="the INSERT after the refused COM_CHANGE_USER counted")
    conn.close()


def test_a_session_over_tls_to_the_proxy_is_read_behind_the_tls(plab):
    import pymysql

    from test_lab_rdsproxy_tls import _context

    from fiswatch.lab import layout as L

    def mine():
        return _client(plab, os.getpid()) or {}

    before = mine().get("endpoints", {}).get("aurora", {}).get("acked", 0)
    ep = plab.endpoint(L.RDS_PROXY_ENDPOINT)
    conn = pymysql.connect(host=_proxy_ip(plab), port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, ssl=_context(plab.ca_file, L.RDS_PROXY_NAME), connect_timeout=10,
                           read_timeout=30, autocommit=True)
    assert conn._sock.version() in ("TLSv1.2", "TLSv1.3")
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS acct_tls (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO acct_tls (v) VALUES (1)")
    conn.close()
    after = wait_for(lambda: mine() if mine().get("endpoints", {}).get("aurora", {}).get("acked", 0) > before else None,
                     30, message="the INSERT over TLS counted")
    assert after["endpoints"]["aurora"]["acked"] == before + 1
    assert not any("TLS" in why for why in after["unmeasured"]), after["unmeasured"]
