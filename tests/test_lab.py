"""End-to-end tests of the local failover lab: real mariadbd, real DNS, real proxies."""
import json
import os
import stat
import subprocess
import sys
import threading

import pytest

from _lab_fixture import answer_of, lab_processes, pick_lab_addresses, port_free, start_lab
from conftest import ROOT, wait_for

from fiswatch import events as E

pytestmark = pytest.mark.lab


def _connect(info, address, read_timeout=2):
    import pymysql

    ep = info.endpoint("aurora")
    return pymysql.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, autocommit=True, connect_timeout=2, read_timeout=read_timeout,
                           write_timeout=2)


def _insert(info, address, value):
    conn = _connect(info, address)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO test (value) VALUES (%s)", (value,))
            return cur.lastrowid
    finally:
        conn.close()


def _ids(info, address):
    conn = _connect(info, address)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM test")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


class Writer(threading.Thread):
    """A client writing through the endpoint name (resolved by the lab's DNS) and reconnecting."""

    def __init__(self, info, endpoint):
        super().__init__(daemon=True)
        self.info, self.endpoint = info, endpoint
        self.acked = []
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        conn = None
        value = 0
        while not self.stop.is_set():
            try:
                if conn is None:
                    answer = answer_of(self.info, self.info.endpoint(self.endpoint).host)
                    if not answer[1]:
                        self.stop.wait(0.05)
                        continue
                    conn = _connect(self.info, answer[1][0], read_timeout=1)
                value += 1
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO test (value) VALUES (%s)", (value,))
                    row_id = cur.lastrowid
                conn.commit()
                self.acked.append(row_id)
            except Exception as exc:  # any driver error: drop the connection, reconnect
                self.errors.append(exc)
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
            self.stop.wait(0.01)
        if conn is not None:
            conn.close()


def test_status_describes_the_lab(lab):
    from fiswatch.lab.api import lab_status

    info = lab_status(lab.dir)
    assert info.nameserver[0].startswith("127.")
    assert {ep.name for ep in info.endpoints} == {"aurora", "rds"}
    aurora = info.endpoint("aurora")
    assert aurora.host == "fiswatch-lab.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com"
    assert aurora.user == "fiswatch" and aurora.user != "root"
    assert aurora.database == "testdb" and aurora.table == "test" and aurora.source == "lab:" + lab.dir
    assert "***" in repr(aurora.password) and aurora.password.reveal() not in repr(info)
    assert {i.cluster for i in info.instances} == {"aurora", "rds"}
    assert len({i.address for i in info.instances}) == 4
    assert sorted(i.role for i in info.instances if i.cluster == "aurora") == ["reader", "writer"]
    assert sorted(i.role for i in info.instances if i.cluster == "rds") == ["primary", "standby"]
    mode = os.stat(info.credentials_file).st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_everything_binds_to_loopback_only(lab):
    import psutil

    pids = lab_processes(lab.dir)
    assert len(pids) >= 5  # the daemon and four mariadbd
    seen = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.pid in pids and conn.status in (psutil.CONN_LISTEN, psutil.CONN_NONE) and conn.laddr:
            seen.append(conn.laddr.ip)
    assert seen, "no listening socket found for the lab's processes"
    assert all(ip.startswith("127.") for ip in seen), seen


def test_dns_answers_rds_shaped_names(lab):
    writer = lab.instance("aurora", "writer")
    reader = lab.instance("aurora", "reader")
    primary = lab.instance("rds", "primary")
    kind, addresses, cnames, ttl = answer_of(lab, lab.endpoint("aurora").host)
    assert (kind, addresses, cnames, ttl) == ("ok", [writer.address], [writer.dns_name], 5)
    kind, addresses, cnames, _ = answer_of(lab, lab.reader_endpoint)
    assert (kind, addresses, cnames) == ("ok", [reader.address], [reader.dns_name])
    assert answer_of(lab, writer.dns_name)[:3] == ("ok", [writer.address], [])
    assert answer_of(lab, lab.endpoint("rds").host) == ("ok", [primary.address], [], 5)
    assert answer_of(lab, "nothing-here.c0ffee0c0ffe.lab-1.rds.amazonaws.com")[0] == "nxdomain"
    assert answer_of(lab, "nothing-here.c0ffee.lab.rds.local")[0] == "nxdomain"


def test_clients_reach_instances_through_proxies_as_non_root(lab):
    writer = lab.instance("aurora", "writer")
    conn = _connect(lab, writer.address)
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), @@read_only")
        user, read_only = cur.fetchone()
    conn.close()
    assert user.startswith("fiswatch@") and read_only == 0
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as info:
        pymysql.connect(host=writer.address, port=writer.port, user="root", password="", connect_timeout=2)
    assert info.value.args[0] == 1045  # root has no TCP account


def _failover_with_probes(lab_info, target, **kw):
    """Run a failover while a writer works; record the DNS answer at each step as it is emitted."""
    from fiswatch.lab.api import failover

    endpoint = lab_info.endpoint(target).host
    steps, answers = [], {}

    def emit(event):
        steps.append(event)
        answers[event.get("step")] = answer_of(lab_info, endpoint)

    writer = Writer(lab_info, target)
    writer.start()
    wait_for(lambda: len(writer.acked) >= 5, 30, message="writes before the failover")
    try:
        failover(lab_info.dir, target, emit=emit, **dict({"profile": "quick"}, **kw))
        count = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= count + 5, 60, message="writes after the failover")
    finally:
        writer.stop.set()
        writer.join(30)
    return steps, answers, writer


def test_aurora_failover_end_to_end(lab):
    from fiswatch.lab.api import lab_status

    before = lab_status(lab.dir)
    old, new = before.instance("aurora", "writer"), before.instance("aurora", "reader")
    steps, answers, writer = _failover_with_probes(before, "aurora")

    names = [e.get("step") for e in steps]
    assert names == ["start", "blackhole", "promote", "dns_empty", "dns_flip", "rejoin", "done"]
    assert all(e.event == E.LAB and e.get("target") == "aurora" and e.get("crash") is False for e in steps)
    start, done = steps[0], steps[-1]
    assert start.get("outage_start") <= done.get("outage_end") <= done.ts

    assert answers["blackhole"][1] == [old.address]  # DNS still answers the old writer
    assert answers["dns_empty"][0] == "empty"  # NOERROR, no address
    assert answers["dns_flip"][:3] == ("ok", [new.address], [new.dns_name])
    assert answer_of(lab, before.reader_endpoint)[1] == [old.address]

    after = lab_status(lab.dir)
    assert after.instance("aurora", "writer").name == new.name
    assert after.instance("aurora", "reader").name == old.name
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as info:  # the old writer is a reader now
        _insert(after, old.address, 1)
    assert info.value.args[0] == 1290

    present = _ids(after, new.address)
    assert writer.acked and not set(writer.acked) - present  # no acknowledged write lost
    row = _insert(after, new.address, 42)  # replication new -> old works
    wait_for(lambda: row in _ids(after, old.address), 30, message="row replicated to the old writer")


def test_aurora_failover_nxdomain_style(lab):
    steps, answers, _ = _failover_with_probes(lab, "aurora", dns_style="nxdomain")
    assert answers["dns_empty"][0] == "nxdomain"
    assert answers["dns_flip"][0] == "ok"


def test_rds_failover_moves_the_a_record(lab):
    from fiswatch.lab.api import lab_status

    before = lab_status(lab.dir)
    old, new = before.instance("rds", "primary"), before.instance("rds", "standby")
    steps, answers, writer = _failover_with_probes(before, "rds")
    assert [e.get("step") for e in steps] == ["start", "blackhole", "promote", "dns_flip", "rejoin", "done"]
    assert answers["promote"][1] == [old.address]
    assert answers["dns_flip"] == ("ok", [new.address], [], 5)
    after = lab_status(lab.dir)
    assert after.instance("rds", "primary").name == new.name
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as info:
        _insert(after, old.address, 1)
    assert info.value.args[0] == 1290
    assert not set(writer.acked) - _ids(after, new.address)


def test_crash_failover_leaves_a_working_cluster(lab):
    from fiswatch.lab.api import failover, lab_status

    before = lab_status(lab.dir)
    old, new = before.instance("aurora", "writer"), before.instance("aurora", "reader")
    steps = []
    failover(lab.dir, "aurora", emit=steps.append, crash=True, profile="quick")
    assert all(e.get("crash") is True for e in steps)
    assert [e.get("step") for e in steps[:3]] == ["start", "lag", "blackhole"]
    assert "paused" in steps[1].get("detail") and "killed" in steps[2].get("detail")
    after = lab_status(lab.dir)
    assert after.instance("aurora", "writer").name == new.name
    row = _insert(after, new.address, 7)
    wait_for(lambda: row in _ids(after, old.address), 30, message="old writer replicating after its crash")
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as info:
        _insert(after, old.address, 1)
    assert info.value.args[0] == 1290


def test_second_up_says_a_lab_runs(lab):
    from fiswatch.lab.api import LabError, lab_up

    with pytest.raises(LabError, match="already runs in"):
        lab_up(lab.dir)


def test_port_taken_fails_with_a_clear_message(tmp_path):
    import socket

    from fiswatch.lab.api import LabError, lab_up

    base, port, dns_port = pick_lab_addresses()
    blocker = socket.socket()
    blocker.bind((base + ".2", port))
    blocker.listen(1)
    try:
        with pytest.raises(LabError) as info:
            lab_up(str(tmp_path / "lab"), base=base, port=port, dns_port=dns_port)
    finally:
        blocker.close()
    message = str(info.value)
    assert "%s.2:%d is taken" % (base, port) in message and "\n" not in message
    assert not lab_processes(str(tmp_path / "lab"))


def test_missing_mariadbd_names_the_install_command(tmp_path):
    from fiswatch.lab.api import LabError, lab_up

    base, port, dns_port = pick_lab_addresses()
    with pytest.raises(LabError, match="install_mariadb.sh"):
        lab_up(str(tmp_path / "lab"), base=base, port=port, dns_port=dns_port, mariadbd="no-such-mariadbd")


def test_down_leaves_no_process_port_or_lock(tmp_path):
    from fiswatch.lab.api import LabNotRunning, lab_down, lab_status

    lab_dir = str(tmp_path / "lab")
    info = start_lab(lab_dir)
    try:
        assert lab_processes(lab_dir)
        assert not port_free(info.instances[0].address, info.instances[0].port)
    finally:
        lab_down(lab_dir)
    assert lab_processes(lab_dir) == []
    for inst in info.instances:
        assert port_free(inst.address, inst.port)
    assert port_free(*info.nameserver)
    for name in ("lab.lock", "control.sock", "lab.json", "failover.lock"):
        assert not os.path.exists(os.path.join(lab_dir, name))
    with pytest.raises(LabNotRunning):
        lab_status(lab_dir)
    with pytest.raises(LabNotRunning):
        lab_down(lab_dir)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "fiswatch.lab.cli", "lab"] + list(args), capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_status_json_and_errors(lab, tmp_path):
    result = _cli("status", "--dir", lab.dir, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["nameserver"]["address"] == lab.nameserver[0]
    assert {e["name"] for e in data["endpoints"]} == {"aurora", "rds"}
    assert data["credentials_file"] == lab.credentials_file
    assert lab.endpoint("aurora").password.reveal() not in result.stdout

    missing = _cli("status", "--dir", str(tmp_path / "none"))
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "no lab runs in" in missing.stderr
    assert _cli().returncode == 2
    bad = _cli("failover", "mongo", "--dir", lab.dir)
    assert bad.returncode == 2
