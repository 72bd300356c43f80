"""The lab's Multi-AZ DB cluster (issue 24 items 1-2) and more Aurora readers (item 3): a real lab
with three semi-synchronous MariaDB servers, real failovers, real drivers."""
import os
import subprocess
import sys
import threading
import time

import pytest

from _lab_fixture import lab, pick_lab_addresses, private_lab, resolver_for  # noqa: F401
from conftest import ROOT, wait_for

pytestmark = pytest.mark.lab

from fiswatch.lab import layout as L  # noqa: E402
from fiswatch.lab import maz_answers as A  # noqa: E402


@pytest.fixture(scope="module")
def mlab(tmp_path_factory):
    """A lab with the Multi-AZ DB cluster and two Aurora readers."""
    with private_lab(tmp_path_factory, "mazlab", multi_az_cluster=True, readers=2) as info:
        yield info


def _status(info):
    from fiswatch.lab.api import lab_status

    return lab_status(info.dir)


def _sock(info, name):
    return L.Layout(dir=info.dir).server_socket(L.spec_by_name(name))


def _root(info, name, statements, timeout=5.0):
    from fiswatch.lab.mariadb import sql

    return sql(_sock(info, name), statements, timeout=timeout)


def _connect(info, address, connector=False, read_timeout=5):
    ep = info.endpoint("maz")
    if connector:
        import mysql.connector

        return mysql.connector.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                                       database=ep.database, autocommit=True, connection_timeout=3, use_pure=True)
    import pymysql

    return pymysql.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, autocommit=True, connect_timeout=3, read_timeout=read_timeout,
                           write_timeout=5)


def _maz(info):
    """(writer InstanceInfo, [reader InstanceInfo]) as the lab says now."""
    insts = [i for i in _status(info).instances if i.cluster == "maz"]
    writer = next(i for i in insts if i.role == "writer")
    return writer, [i for i in insts if i is not writer]


def _replica_status(info, inst, query="SHOW REPLICA STATUS", connector=False):
    conn = _connect(info, inst.address, connector=connector)
    try:
        cur = conn.cursor()
        cur.execute(query)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        conn.close()
    return names, rows


def _failover(info, **kw):
    from fiswatch.lab.api import failover

    steps = []
    failover(info.dir, "maz", emit=lambda ev: steps.append((time.time(), ev.as_dict())),
             profile=kw.pop("profile", "quick"), maz=kw)
    return steps


def _step(steps, name):
    return next((t, ev) for t, ev in steps if ev.get("step") == name)


def _replicating_from(info, replica_name, source_name):
    from fiswatch.lab.settle import replicating_from

    layout = L.Layout(dir=info.dir)
    return replicating_from(layout, L.spec_by_name(replica_name), L.spec_by_name(source_name))


# --- item 1: the shape and its answers ----------------------------------------------------------------
def test_status_lists_the_shape_and_both_reader_endpoints(mlab):
    import json

    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", mlab.dir, "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["shapes"] == ["aurora", "rds", "maz"] and data["readers"] == 2
    assert data["maz_reader_endpoint"] == L.MAZ_ENDPOINT_NAMES["maz-ro"]
    assert [e["name"] for e in data["endpoints"]] == ["aurora", "rds", "maz"]
    assert sorted(i["name"] for i in data["instances"] if i["cluster"] == "maz") == [s.name for s in L.MAZ_INSTANCES]
    text = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", mlab.dir],
                          cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    assert "Multi-AZ DB cluster" in text and "maz-ro" in text


def test_replica_status_has_mysql8_shape_and_names_the_writer_on_readers_only(mlab):
    writer, readers = _maz(mlab)
    for connector in (False, True):  # PyMySQL and mysql-connector (pure) read the same answer
        names, rows = _replica_status(mlab, writer, connector=connector)
        assert len(names) >= 40 and names[A.SOURCE_SERVER_ID_INDEX] == "Source_Server_Id"
        assert names[:4] == ["Replica_IO_State", "Source_Host", "Source_User", "Source_Port"]
        assert rows == [] or list(rows) == []  # no row on the writer, as on a MySQL source
        for reader in readers:
            names, rows = _replica_status(mlab, reader, connector=connector)
            assert len(rows) == 1
            status = dict(zip(names, rows[0]))
            assert int(status["Source_Server_Id"]) == int(writer.server_id)
            assert int(rows[0][39]) == int(writer.server_id)  # what the AWS wrapper reads, by position
            assert status["Replica_IO_Running"] == "Yes"
    names, rows = _replica_status(mlab, readers[0], "SHOW SLAVE STATUS")
    assert names[39] == "Master_Server_Id" and "Slave_IO_Running" in names and int(rows[0][39]) == int(writer.server_id)


def test_topology_version_comment_report_host_read_only(mlab):
    writer, readers = _maz(mlab)
    for inst in [writer] + readers:
        conn = _connect(mlab, inst.address)
        try:
            cur = conn.cursor()
            cur.execute("SELECT id, endpoint, port FROM mysql.rds_topology ORDER BY id")
            rows = cur.fetchall()
            assert [(int(r[0]), r[1], int(r[2])) for r in rows] == [
                (s.index, s.dns_name, inst.port) for s in L.MAZ_INSTANCES]
            cur.execute("SELECT id, SUBSTRING_INDEX(endpoint, '.', 1) FROM mysql.rds_topology WHERE id = @@server_id")
            assert cur.fetchall() == ((int(inst.server_id), inst.name),)
            cur.execute("SHOW VARIABLES LIKE 'version_comment'")
            assert cur.fetchall() == (("version_comment", "Source distribution"),)
            cur.execute("SHOW VARIABLES LIKE 'report_host'")
            assert cur.fetchall() == (("report_host", inst.address),)
            cur.execute("SELECT @@innodb_read_only")
            assert int(cur.fetchone()[0]) == (0 if inst is writer else 1)
            if inst is not writer:  # readable, not writable
                cur.execute("SELECT COUNT(*) FROM test")
                with pytest.raises(Exception) as err:
                    cur.execute("INSERT INTO test (value) VALUES (1)")
                assert "1290" in str(err.value)
        finally:
            conn.close()


def test_commit_waits_for_a_reader_until_the_semi_sync_timeout(mlab):
    writer, readers = _maz(mlab)

    def counters():
        rows = _root(mlab, writer.name, ["SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'"])
        return {k: v for k, v in rows}

    assert counters()["Rpl_semi_sync_master_status"] == "ON"
    assert counters()["Rpl_semi_sync_master_clients"] == "2"
    conn = _connect(mlab, writer.address, read_timeout=30)
    cur = conn.cursor()
    before = counters()
    started = time.monotonic()
    cur.execute("INSERT INTO test (value) VALUES (24)")
    acked = time.monotonic() - started
    after = counters()
    assert int(after["Rpl_semi_sync_master_yes_tx"]) == int(before["Rpl_semi_sync_master_yes_tx"]) + 1
    _root(mlab, writer.name, ["SET GLOBAL rpl_semi_sync_master_timeout=1500"])
    try:
        for reader in readers:  # provoke it: no reader receives anything
            _root(mlab, reader.name, ["STOP SLAVE IO_THREAD"])
        started = time.monotonic()
        cur.execute("INSERT INTO test (value) VALUES (25)")
        waited = time.monotonic() - started
        stuck = counters()
        assert int(stuck["Rpl_semi_sync_master_no_tx"]) == int(after["Rpl_semi_sync_master_no_tx"]) + 1
        assert waited >= 1.4, "the commit returned after %.2fs, before the 1.5 s timeout" % waited
        assert stuck["Rpl_semi_sync_master_status"] == "OFF"  # fell back to asynchronous
    finally:
        for reader in readers:
            _root(mlab, reader.name, ["START SLAVE IO_THREAD"])
        _root(mlab, writer.name, ["SET GLOBAL rpl_semi_sync_master_timeout=%d" % 10000])
        conn.close()
    wait_for(lambda: counters()["Rpl_semi_sync_master_status"] == "ON", 60, message="semi-sync back on")
    assert acked < 1.4  # with a reader acknowledging, no wait for the timeout


# --- item 2: its failover ------------------------------------------------------------------------------
def test_failover_promotes_the_most_advanced_reader_and_repoints_the_other(mlab):
    writer, readers = _maz(mlab)
    behind, ahead = sorted(readers, key=lambda i: i.name)  # the tie-break would pick `behind`
    _root(mlab, behind.name, ["STOP SLAVE IO_THREAD"])
    conn = _connect(mlab, writer.address)
    conn.cursor().execute("INSERT INTO test (value) VALUES (2401)")  # acknowledged by `ahead` only
    conn.close()
    marker = _root(mlab, writer.name, ["SELECT MAX(id) FROM testdb.test"])[0][0]
    steps = _failover(mlab)
    new_writer, new_readers = _maz(mlab)
    assert new_writer.name == ahead.name
    assert "promoted" in _step(steps, "promote")[1]["detail"]
    assert sorted(r.name for r in new_readers) == sorted([behind.name, writer.name])
    for reader in new_readers:  # re-pointed: replicating from the new writer, named in column 39
        wait_for(lambda: _replicating_from(mlab, reader.name, new_writer.name), 30, message="re-pointed")
        names, rows = _replica_status(mlab, reader)
        assert int(rows[0][39]) == int(new_writer.server_id) != int(writer.server_id)
        wait_for(lambda: _root(mlab, reader.name, ["SELECT COUNT(*) FROM testdb.test WHERE id = %d" % marker])[0][0]
                 == 1, 30, message="%s has the row it missed" % reader.name)
    assert _replica_status(mlab, new_writer)[1] in ((), [])

    def semi_sync():
        return dict(_root(mlab, new_writer.name, ["SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'"]))

    wait_for(lambda: semi_sync()["Rpl_semi_sync_master_clients"] == "2", 30, message="both readers semi-sync")
    assert semi_sync()["Rpl_semi_sync_master_status"] == "ON"
    resolver = resolver_for(mlab)
    answer = resolver.resolve(L.MAZ_ENDPOINT_NAMES["maz"], "A")
    assert [str(r) for r in answer] == [new_writer.address]


def test_pymysql_writes_through_a_failover_with_none_lost(mlab):
    """A writer following the cluster endpoint through the lab's DNS: every acknowledged row survives."""
    resolver = resolver_for(mlab)
    acked, errors, stop = [], [], threading.Event()

    def writer_loop():
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    address = str(resolver.resolve(L.MAZ_ENDPOINT_NAMES["maz"], "A")[0])
                    conn = _connect(mlab, address, read_timeout=1)
                cur = conn.cursor()
                cur.execute("INSERT INTO test (value) VALUES (7)")
                acked.append(cur.lastrowid)
            except Exception as exc:
                errors.append(type(exc).__name__)
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
                time.sleep(0.05)
            time.sleep(0.01)

    thread = threading.Thread(target=writer_loop, daemon=True)
    thread.start()
    wait_for(lambda: len(acked) >= 10, 30, message="writes before the failover")
    _failover(mlab, profile="planned")
    count = len(acked)
    wait_for(lambda: len(acked) >= count + 10, 60, message="writes after the failover")
    stop.set()
    thread.join(10)
    new_writer, _ = _maz(mlab)
    ids = set(r[0] for r in _root(mlab, new_writer.name, ["SELECT id FROM testdb.test"]))
    lost = [i for i in acked if i not in ids]
    assert lost == [] and len(acked) >= 20
    assert errors, "the failover should have interrupted the writer at least once"


def test_lag_delays_the_promotion(mlab):
    steps = _failover(mlab, lag=1.5)
    fenced, _ = _step(steps, "blackhole")
    promoted, _ = _step(steps, "promote")
    assert promoted - fenced >= 1.5
    assert "1.5" in _step(steps, "lag")[1]["detail"]


def test_stale_source_server_id_fault(mlab):
    old, _ = _maz(mlab)
    steps = _failover(mlab, stale_reader=True)
    new, readers = _maz(mlab)
    other = next(r for r in readers if r.name != old.name)
    assert "stale" in _step(steps, "repoint")[1]["detail"]
    wait_for(lambda: _replicating_from(mlab, other.name, new.name), 30, message="really re-pointed")
    assert int(_replica_status(mlab, other)[1][0][39]) == int(old.server_id)  # the answer is stale
    rejoined = next(r for r in readers if r.name == old.name)
    assert int(_replica_status(mlab, rejoined)[1][0][39]) == int(new.server_id)
    _failover(mlab)  # the next failover leaves every answer true again
    new2, readers2 = _maz(mlab)
    for reader in readers2:
        assert int(_replica_status(mlab, reader)[1][0][39]) == int(new2.server_id)


def test_a_reader_killed_during_the_failover_leaves_the_lab_consistent(mlab):
    from fiswatch.lab.api import failover
    from fiswatch.lab.control import request

    old, readers = _maz(mlab)
    victim = readers[0]
    ctl = os.path.join(mlab.dir, L.CONTROL_SOCKET)

    def emit(event):
        if event.as_dict().get("step") == "blackhole":
            request(ctl, "kill", instance=victim.name)

    failover(mlab.dir, "maz", emit=emit, profile="quick", maz={})
    new, others = _maz(mlab)
    assert new.name == readers[1].name
    state = _status(mlab)
    assert all(i.running for i in state.instances if i.cluster == "maz")
    for reader in others:
        wait_for(lambda: _replicating_from(mlab, reader.name, new.name), 30, message="%s re-pointed" % reader.name)
    assert sum(1 for i in state.instances if i.cluster == "maz" and i.role == "writer") == 1


# --- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--lag", "-1"], "--lag must be 0..600"),
    (["--lag", "1e9"], "--lag must be 0..600"),
    (["--lag", "nan"], "--lag must be 0..600"),
])
def test_bad_lag_is_one_line_exit_2(mlab, argv, words):
    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "failover", "maz", "--dir", mlab.dir] + argv,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and words in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_maz_options_on_another_target_are_refused(mlab):
    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "failover", "aurora", "--lag", "3", "--dir",
                          mlab.dir], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "only applies to `lab failover maz`" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_failover_maz_on_a_lab_without_the_shape(lab):
    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "failover", "maz", "--dir", lab.dir],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert "no Multi-AZ DB cluster" in out.stderr and "--multi-az-cluster" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_readers_out_of_range_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "up", "--dir", str(tmp_path), "--readers", "9"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--readers must be a whole number 1..3" in out.stderr
    assert "Traceback" not in out.stderr


# --- item 3: Aurora readers ----------------------------------------------------------------------------
def test_aurora_reader_endpoint_answers_with_both_readers(mlab):
    resolver = resolver_for(mlab)
    seen = set()
    for _ in range(60):
        answer = resolver.resolve(mlab.reader_endpoint, "A")
        seen.add(str(answer.rrset[0]) if answer.rrset else None)
        assert answer.rrset.ttl == 5
        seen.add(str(answer.canonical_name).rstrip("."))
    readers = {i.dns_name for i in _status(mlab).instances if i.cluster == "aurora" and i.role == "reader"}
    assert len(readers) == 2
    assert readers <= seen


def test_aurora_failover_drops_only_the_promoted_readers_sessions(mlab):
    import pymysql

    from fiswatch.lab.api import failover

    status = _status(mlab)
    readers = [i for i in status.instances if i.cluster == "aurora" and i.role == "reader"]
    ep = mlab.endpoint("aurora")
    conns = {i.name: pymysql.connect(host=i.address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                                     database=ep.database, autocommit=True, connect_timeout=3, read_timeout=5)
             for i in readers}
    for conn in conns.values():
        cur = conn.cursor()
        cur.execute("SELECT @@innodb_read_only")
        assert int(cur.fetchone()[0]) == 1
    failover(mlab.dir, "aurora", profile="quick")
    after = _status(mlab)
    promoted = after.instance("aurora", "writer").name
    assert promoted in conns
    survivor = next(name for name in conns if name != promoted)
    cur = conns[survivor].cursor()
    cur.execute("SELECT COUNT(*) FROM test")  # the other reader kept serving on the same session
    with pytest.raises(pymysql.err.OperationalError):
        conns[promoted].cursor().execute("SELECT 1")
    for name in conns:
        try:
            conns[name].close()
        except Exception:
            pass
    wait_for(lambda: _replicating_from(mlab, survivor, promoted), 30, message="the other reader follows")


# --- item 5: the AWS wrapper against the Multi-AZ cluster ------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(sys.version_info < (3, 10), reason="the AWS wrapper needs Python >= 3.10 (3.9: the tests above)")
def test_the_aws_wrapper_through_a_maz_failover_is_reported_as_it_happens(mlab, tmp_path):
    """No promotion staged: the lab promotes cleanly, fiswatch's account must match the lab's truth,
    whatever the wrapper makes of it (3.1.0 was seen never to find a cleanly promoted writer)."""
    import json
    import signal

    ep = mlab.endpoint("maz")
    out_path = str(tmp_path / "wrapper.jsonl")
    record_path = str(tmp_path / "wrapper.record")
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")  # FISWATCH_PASSWORD_MAZ: from `lab exec`
    env.pop("FISWATCH_PASSWORD_MAZ", None)
    pattern = "?." + L.DOMAIN
    argv = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", mlab.dir, "--", sys.executable, "-m",
            "fiswatch", "watch", "--json", "--duration", "300", "--record", record_path, "--endpoint",
            "maz=mysql://%s@%s:%d/%s" % (ep.user, ep.host, ep.port, ep.database), "--backend",
            "aws-wrapper:wrapper_dialect=multi-az-mysql,cluster_instance_host_pattern=%s,failover_timeout_sec=8"
            % pattern]

    def events(path=out_path):
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def ops():
        return sum(sum(p["ops"] for p in e["probes"].values()) for e in events() if e["event"] == "tick")

    with open(out_path, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, cwd=ROOT, env=env, text=True)
    try:
        wait_for(lambda: ops() >= 5, 90, message="wrapper writes")
        old, _ = _maz(mlab)
        steps = _failover(mlab, profile="planned")
        new, readers = _maz(mlab)
        promoted_at = _step(steps, "promote")[0]
        ops_then = ops()
        wait_for(lambda: ops() >= ops_then + 5, 90, message="writes after the failover")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    # the lab's answers were faithful: no replica row on the new writer, both readers name it in column 39
    assert _replica_status(mlab, new)[1] in ((), [])
    for reader in readers:
        assert int(_replica_status(mlab, reader)[1][0][39]) == int(new.server_id)
    evs = events(record_path)
    after = [e for e in evs if e["event"] == "write" and e["ts"] > promoted_at + 0.5]
    assert after and all(w["address"] == new.address for w in after)  # acknowledged only by the real writer
    moved = [e for e in evs if e["event"] == "failover"]
    summary = next(e for e in reversed(evs) if e["event"] == "summary")["probes"]
    (probe,) = summary.values()
    assert probe["failovers"] == len(moved)
    for e in moved:
        assert e.get("to") == new.address
    failed = [e for e in evs if e["event"] == "error" and e.get("kind") == "failover-failed"]
    assert moved or failed, "the wrapper neither failed over nor said it failed: %r" % [
        (e["event"], e.get("kind")) for e in evs if e["event"] not in ("write", "tick")]
    verify = next(e for e in evs if e["event"] == "verify")
    assert verify["ok"] and verify["lost"] == 0
    print("wrapper outcome: %d failover(s), %d failover-failed error(s): %s" % (
        len(moved), len(failed), failed[0]["message"] if failed else moved[0]))


@pytest.mark.parametrize("stop_at, outcome", [("lag", "rolled back"), ("promote", "finished")])
def test_a_maz_failover_stopped_midway_is_finished_or_rolled_back(mlab, stop_at, outcome):
    from fiswatch.lab.api import LabError, failover

    old, readers = _maz(mlab)
    cancel = threading.Event()
    seen = []

    def emit(event):
        seen.append(event.as_dict())
        if event.as_dict().get("step") == stop_at:
            cancel.set()

    with pytest.raises(LabError) as err:
        failover(mlab.dir, "maz", emit=emit, profile="quick", cancel=cancel, maz={"lag": 2.0})
    assert outcome in str(err.value) and "Traceback" not in str(err.value)
    writer, others = _maz(mlab)
    if outcome == "rolled back":
        assert writer.name == old.name
    else:
        assert writer.name != old.name
    state = _status(mlab)
    maz_insts = [i for i in state.instances if i.cluster == "maz"]
    assert [i.role for i in maz_insts].count("writer") == 1 and all(i.proxy_mode == "pass" for i in maz_insts)
    for reader in others:
        wait_for(lambda: _replicating_from(mlab, reader.name, writer.name), 30, message="%s follows" % reader.name)
        assert int(_replica_status(mlab, reader)[1][0][39]) == int(writer.server_id)
    conn = _connect(mlab, writer.address)  # the writer takes writes
    conn.cursor().execute("INSERT INTO test (value) VALUES (9)")
    conn.close()


def test_reader_endpoint_answers_the_writer_when_no_reader_is_left(mlab):
    """Last in this module: it stops both Aurora readers, then starts them again."""
    from fiswatch.lab.control import request

    ctl = os.path.join(mlab.dir, L.CONTROL_SOCKET)
    status = _status(mlab)
    writer = status.instance("aurora", "writer")
    readers = [i for i in status.instances if i.cluster == "aurora" and i.role == "reader"]
    resolver = resolver_for(mlab)

    def targets():
        return {str(resolver.resolve(mlab.reader_endpoint, "A").canonical_name).rstrip(".") for _ in range(20)}

    try:
        request(ctl, "kill", instance=readers[0].name)
        assert targets() == {readers[1].dns_name}
        request(ctl, "kill", instance=readers[1].name)
        assert targets() == {writer.dns_name}
    finally:
        for reader in readers:
            request(ctl, "start", instance=reader.name, read_only=True, timeout=90)
            _root(mlab, reader.name, ["START SLAVE"])
    assert targets() == {r.dns_name for r in readers}
    for reader in readers:
        wait_for(lambda: _replicating_from(mlab, reader.name, writer.name), 30, message="%s back" % reader.name)
