"""The lab's Aurora answers a topology-aware client as Aurora does (issue 11), and a failover
stopped midway never leaves it half failed over (issue 9 item 7). Real lab, real drivers."""
import datetime
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from _lab_fixture import answer_of, resolver_for
from conftest import ROOT, wait_for

pytestmark = pytest.mark.lab

from fiswatch import events as E  # noqa: E402
from fiswatch.lab import aurora  # noqa: E402


def _pymysql(info, address, port=None):
    import pymysql

    ep = info.endpoint("aurora")
    return pymysql.connect(host=address, port=port or ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, autocommit=True, connect_timeout=2, read_timeout=5, write_timeout=5)


def _connector(info, address):
    import mysql.connector

    ep = info.endpoint("aurora")
    return mysql.connector.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                                   database=ep.database, autocommit=True, connection_timeout=2, use_pure=True)


def _ask(conn, query):
    cur = conn.cursor()
    try:
        cur.execute(query)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        cur.close()


def _answers(conn):
    return {q: _ask(conn, q) for q in aurora.WRAPPER_QUERIES}


def _check_aurora_shape(info, inst, answers, writer_id):
    version = answers[aurora.VERSION_QUERY]
    assert len(version) == 1 and version[0][0] == "aurora_version" and version[0][1].startswith("3.")
    rows = answers[aurora.TOPOLOGY_QUERY]
    assert sorted(r[0] for r in rows) == ["fiswatch-lab-instance-1", "fiswatch-lab-instance-2"]  # SERVER_ID = name
    assert [r[0] for r in rows if r[1]] == [writer_id]
    for server_id, _, cpu, lag, updated in rows:
        assert isinstance(updated, datetime.datetime)
        assert float(cpu) >= 0 and float(lag) >= 0
    assert answers[aurora.HOST_ID_QUERY] == [(inst.server_id, inst.server_id)]
    is_writer = inst.server_id == writer_id
    assert int(answers[aurora.IS_READER_QUERY][0][0]) == (0 if is_writer else 1)
    assert answers[aurora.WRITER_ID_QUERY] == ([(inst.server_id,)] if is_writer else [])


def _aurora_instances(info):
    return [i for i in info.instances if i.cluster == "aurora"]


def _check_all(info):
    writer = info.instance("aurora", "writer")
    for inst in _aurora_instances(info):
        for connect in (_pymysql, _connector):
            conn = connect(info, inst.address)
            try:
                _check_aurora_shape(info, inst, _answers(conn), writer.server_id)
            finally:
                conn.close()


def test_instances_answer_the_wrappers_queries_as_aurora(lab):
    from fiswatch.lab.api import lab_status

    info = lab_status(lab.dir)
    assert info.cluster_instance_host_pattern == "?.c0ffee0c0ffe.lab-1.rds.amazonaws.com:%d" % (
        info.endpoint("aurora").port)
    # the Aurora endpoint carries it (the wrapper backend reads it there, not from the lab's files)
    assert info.endpoint("aurora").host_pattern == info.cluster_instance_host_pattern
    assert info.endpoint("rds").host_pattern is None
    addresses = set()
    for inst in _aurora_instances(info):  # the pattern leads each SERVER_ID (its name) to its own proxy
        assert inst.server_id == inst.name
        host = info.cluster_instance_host_pattern.replace("?", inst.server_id)
        assert host == "%s:%d" % (inst.dns_name, inst.port)
        addresses.add(resolver_for(info).resolve(inst.dns_name, "A")[0].address)
        assert inst.address in addresses
    assert len(addresses) == 2
    _check_all(info)
    conn = _pymysql(info, info.instance("rds", "primary").address)  # RDS Multi-AZ: no Aurora answers
    try:
        assert _ask(conn, aurora.VERSION_QUERY) == []
    finally:
        conn.close()


def test_no_tls_and_distinct_host_port_aliases(lab):
    seen = set()
    for inst in _aurora_instances(lab):
        conn = _connector(lab, inst.address)
        try:
            assert _ask(conn, "SHOW STATUS LIKE 'Ssl_cipher'") in ([("Ssl_cipher", "")], [])
            seen.add(_ask(conn, "SELECT CONCAT(@@hostname, ':', @@port)")[0][0])  # the wrapper's host alias
        finally:
            conn.close()
    assert len(seen) == 2


def test_every_other_query_passes_unchanged(lab):
    import pymysql

    reader = lab.instance("aurora", "reader")
    conn = _pymysql(lab, reader.address)
    try:
        assert _ask(conn, "SELECT 1") == [(1,)]
        text = "SELECT @@aurora_server_id, @@aurora_server_id"
        assert _ask(conn, "SELECT '%s'" % text) == [(text,)]
        # the same text with a comment, or in another case, reaches MariaDB as it is
        assert int(_ask(conn, "/* fiswatch */ SELECT @@innodb_read_only")[0][0]) == 0  # MariaDB's own variable
        with pytest.raises(pymysql.err.OperationalError) as unknown:
            _ask(conn, text + " /* x */")
        assert unknown.value.args[0] == 1193  # unknown system variable: not rewritten
        with pytest.raises(pymysql.err.MySQLError):
            _ask(conn, aurora.TOPOLOGY_QUERY.lower())
        assert _ask(conn, "SELECT COUNT(*) >= 0 FROM test") == [(1,)]
        big = "x" * 100000  # a packet longer than any rewritten query passes as it is
        assert _ask(conn, "SELECT LENGTH('%s')" % big) == [(100000,)]
    finally:
        conn.close()


def test_query_rewriter_frames_packets_split_anywhere():
    """The rewriter runs on the shared framing (wire/framing.py); tests/test_wire_framing.py has the rest."""
    from fiswatch.lab.wire import framing as F
    from fiswatch.lab.wire.session import Session

    rewriter = aurora.QueryRewriter(aurora.rewrites("7"))
    session = Session(rewriter=rewriter)
    greeting = F.packet_bytes(0, b"\x0a10.11\x00" + b"\x01\x00\x00\x00" + b"a" * 8 + b"\x00" + b"\xff\xf7"
                              + b"\x08\x02\x00\xff\x81\x15" + b"\x00" * 10)
    session.from_server(greeting)
    handshake = F.packet_bytes(1, (0x000FA68D & ~0x820).to_bytes(4, "little") + b"\x00" * 28 + b"u\x00\x00")
    query = F.packet_bytes(0, b"\x03" + aurora.HOST_ID_QUERY.encode())
    other = F.packet_bytes(0, b"\x03SELECT 1")
    assert session.from_client(handshake) == handshake
    session.from_server(F.packet_bytes(2, b"\x00\x00\x00\x02\x00\x00\x00"))
    stream = other + query + other
    out = b"".join(session.from_client(stream[i:i + 3]) for i in range(0, len(stream), 3))
    expected_query = aurora.rewrites("7")[aurora.HOST_ID_QUERY].encode()
    assert out == other + F.packet_bytes(0, b"\x03" + expected_query) + other
    assert rewriter.rewritten == 1

    tls = Session(rewriter=aurora.QueryRewriter(aurora.rewrites("7")))  # TLS requested: never touched
    tls.from_server(greeting)
    ssl_request = F.packet_bytes(1, (0x000FA68D | 0x800).to_bytes(4, "little") + b"\x00" * 28)
    assert tls.from_client(ssl_request + query) == ssl_request + query


def _topology_from(info, address):
    conn = _pymysql(info, address)
    try:
        return _ask(conn, aurora.TOPOLOGY_QUERY)
    finally:
        conn.close()


def test_promotion_reaches_the_topology_before_dns(lab):
    from fiswatch.lab.api import failover, lab_status

    before = lab_status(lab.dir)
    old, new = before.instance("aurora", "writer"), before.instance("aurora", "reader")
    steps = []
    job = threading.Thread(target=failover, args=(lab.dir, "aurora"), kwargs={"emit": steps.append}, daemon=True)
    job.start()

    def promoted():
        rows = _topology_from(before, new.address)
        return [r[0] for r in rows if r[1]] == [new.server_id]

    wait_for(promoted, 30, interval=0.05, message="the new writer named in its topology")
    answer = answer_of(lab, before.endpoint("aurora").host)
    assert answer[1] == [old.address]  # DNS still names the old writer
    assert "dns_flip" not in [e.get("step") for e in steps]
    job.join(60)
    assert [e.get("step") for e in steps][-1] == "done"
    after = lab_status(lab.dir)
    assert after.failover_status()["state"] == "completed"
    _check_all(after)  # the old writer answers as a reader, everyone names the new writer
    done = steps[-1].ts

    def fresh():
        stamp = max(r[4] for r in _topology_from(after, old.address))
        return stamp.timestamp() > done + 1  # the heartbeat on the new writer reaches the old one

    wait_for(fresh, 30, message="LAST_UPDATE_TIMESTAMP moving on after the failover")


# --- a failover stopped midway -------------------------------------------------------------------

def _writers(info):
    """Aurora servers with read_only=0 (asked as root over their sockets)."""
    from fiswatch.lab import layout as L
    from fiswatch.lab.mariadb import sql

    out = []
    for spec in L.cluster_specs("aurora"):
        path = os.path.join(info.dir, L.datadir_name(spec), "mysqld.sock")
        if int(sql(path, ["SELECT @@read_only"])[0][0]) == 0:
            out.append(spec.name)
    return out


def _assert_one_working_writer(info_dir, lab):
    from fiswatch.lab.api import lab_status

    info = lab_status(info_dir)
    writers = _writers(info)
    assert len(writers) == 1, writers
    writer = info.instance("aurora", "writer")
    assert writer.name == writers[0] and writer.proxy_mode == "pass"
    assert all(i.proxy_mode == "pass" and i.running for i in info.instances)
    answer = answer_of(lab, info.endpoint("aurora").host)
    assert answer[0] == "ok" and answer[1] == [writer.address]
    conn = _pymysql(info, writer.address)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO test (value) VALUES (5)")
            row = cur.lastrowid
    finally:
        conn.close()
    reader = info.instance("aurora", "reader")

    def replicated():
        c = _pymysql(info, reader.address)
        try:
            return _ask(c, "SELECT COUNT(*) FROM test WHERE id = %d" % row) == [(1,)]
        finally:
            c.close()

    wait_for(replicated, 30, message="the write replicated to the reader")
    _check_all(info)
    return info


@pytest.mark.parametrize("stop_at,outcome", [("blackhole", "rolled back"), ("promote", "finished")])
def test_ctrl_c_midway_leaves_exactly_one_writer(lab, stop_at, outcome):
    from fiswatch.lab.api import lab_status

    before = lab_status(lab.dir)
    old, new = before.instance("aurora", "writer"), before.instance("aurora", "reader")
    env = dict(os.environ, PYTHONPATH=ROOT)
    # the fast profile fences for 1 s only: on a loaded machine the step can be over between the
    # status read and the signal; --realistic fences for 8 s
    timing = ["--realistic"] if stop_at == "blackhole" else []
    proc = subprocess.Popen([sys.executable, "-m", "fiswatch", "lab", "failover", "aurora", "--dir", lab.dir] + timing,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: (lab_status(lab.dir).failover_status() or {}).get("step") == stop_at
                 and lab_status(lab.dir).failover_status().get("state") == "running", 30, interval=0.02,
                 message="the failover reaching %s" % stop_at)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert outcome in err and "Traceback" not in err and "Traceback" not in out
    info = _assert_one_working_writer(lab.dir, lab)
    expected = new if outcome == "finished" else old
    assert info.instance("aurora", "writer").name == expected.name
    status = info.failover_status()
    assert status["state"] == outcome and status["step"] == stop_at and status["reason"] == "interrupted"
    text = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", lab.dir],
                          capture_output=True, text=True, env=env, timeout=60).stdout
    assert "%s at step %s" % (outcome, stop_at) in text


def test_catch_up_timeout_rolls_back(lab, monkeypatch):
    from fiswatch.lab import failover as F
    from fiswatch.lab import layout as L
    from fiswatch.lab.api import LabError, failover, lab_status
    from fiswatch.lab.mariadb import sql

    before = lab_status(lab.dir)
    old, new = before.instance("aurora", "writer"), before.instance("aurora", "reader")
    sql(os.path.join(lab.dir, L.datadir_name(L.spec_by_name(new.name)), "mysqld.sock"), ["STOP SLAVE SQL_THREAD"])
    conn = _pymysql(before, old.address)  # a write the reader cannot apply now
    try:
        _ask(conn, "INSERT INTO test (value) VALUES (9)")
    finally:
        conn.close()
    monkeypatch.setattr(F, "CATCH_UP_TIMEOUT", 1.5)
    with pytest.raises(LabError) as error:
        failover(lab.dir, "aurora", profile="quick")
    assert "rolled back at step blackhole" in str(error.value) and "did not catch up" in str(error.value)
    info = _assert_one_working_writer(lab.dir, lab)
    assert info.instance("aurora", "writer").name == old.name


def test_cancel_after_promotion_finishes_at_once(lab):
    from fiswatch.lab.api import LabError, failover, lab_status

    before = lab_status(lab.dir)
    new = before.instance("aurora", "reader")
    cancel = threading.Event()
    steps = []

    def emit(event):
        steps.append(event)
        if event.get("step") == "promote":
            cancel.set()

    t0 = time.monotonic()
    with pytest.raises(LabError) as error:
        failover(lab.dir, "aurora", emit=emit, cancel=cancel)  # fast: DNS would flip 9 s after promotion
    assert time.monotonic() - t0 < 8
    assert "finished at step promote" in str(error.value)
    assert steps[-1].get("step") == "done" and steps[-1].get("recovered") == "finished"
    assert steps[-1].get("outage_end") >= steps[0].get("outage_start")
    info = _assert_one_working_writer(lab.dir, lab)
    assert info.instance("aurora", "writer").name == new.name


def test_demo_quit_mid_failover_finishes_or_rolls_it_back(lab, tmp_path):
    import json

    record = str(tmp_path / "demo.jsonl")
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--aurora-after", "1",
                             "--rds-after", "600", "--duration", "4", "--plain", "--record", record],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with open(record) as fh:
        steps = [e for e in map(json.loads, fh) if e.get("event") == E.LAB]
    assert steps[0]["step"] == "start"
    assert steps[-1]["step"] in ("done", "rolled_back") and steps[-1]["recovered"] in ("finished", "rolled back")
    _assert_one_working_writer(lab.dir, lab)


def test_a_killed_failover_is_recovered_by_the_next_one(lab):
    from fiswatch.lab.api import failover, lab_status

    env = dict(os.environ, PYTHONPATH=ROOT)
    # --realistic: the writer stays fenced for 8 s before promotion (fast: 1 s, which a loaded
    # machine can spend between the status read and the SIGKILL)
    proc = subprocess.Popen([sys.executable, "-m", "fiswatch", "lab", "failover", "aurora", "--dir", lab.dir,
                             "--realistic"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: (lab_status(lab.dir).failover_status() or {}).get("step") == "blackhole", 30,
                 interval=0.02, message="the failover fencing the writer")
        proc.kill()  # SIGKILL: no chance to recover by itself
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", lab.dir],
                          capture_output=True, text=True, env=env, timeout=60).stdout
    assert "STOPPED HALFWAY at step blackhole" in text
    steps = []
    failover(lab.dir, "aurora", emit=steps.append, profile="quick")
    assert steps[0].get("step") == "recovered" and "its process %d ended midway" % proc.pid in steps[0].get("detail")
    assert steps[-1].get("step") == "done"
    _assert_one_working_writer(lab.dir, lab)


def test_rds_failover_cancelled_before_promotion_rolls_back(lab):
    from fiswatch.lab import layout as L
    from fiswatch.lab.api import LabError, failover, lab_status
    from fiswatch.lab.mariadb import sql

    before = lab_status(lab.dir)
    primary = before.instance("rds", "primary")
    cancel = threading.Event()

    def emit(event):
        if event.get("step") == "blackhole":
            cancel.set()

    with pytest.raises(LabError) as error:
        failover(lab.dir, "rds", emit=emit, cancel=cancel)
    assert "rolled back at step blackhole (cancelled)" in str(error.value)
    after = lab_status(lab.dir)
    assert after.instance("rds", "primary").name == primary.name
    assert all(i.proxy_mode == "pass" for i in after.instances)
    assert answer_of(lab, after.endpoint("rds").host)[1] == [primary.address]
    writable = [s.name for s in L.cluster_specs("rds")
                if int(sql(os.path.join(lab.dir, L.datadir_name(s), "mysqld.sock"), ["SELECT @@read_only"])[0][0]) == 0]
    assert writable == [primary.name]
