"""Outages where the name does not move (issue 22 item 3): `ALTER SYSTEM CRASH` sent by the `mariadb`
client, `lab crash`, `lab reboot`, and the bad input around them. Real lab, real clients."""
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from _demo_key import press_twice
from _lab_fixture import answer_of
from conftest import ROOT, wait_for

pytestmark = pytest.mark.lab

from fiswatch.lab import layout as L  # noqa: E402


def _connect(info, address, endpoint="aurora", timeout=2):
    import pymysql

    ep = info.endpoint(endpoint)
    return pymysql.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, autocommit=True, connect_timeout=timeout, read_timeout=5,
                           write_timeout=5)


def _one(conn, query):
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchone()


def _writer(info, cluster="aurora"):
    from fiswatch.lab.api import lab_status

    return lab_status(info.dir).instance(cluster, "writer" if cluster == "aurora" else "primary")


def _address_of(info, name):
    status, addresses, _, _ = answer_of(info, name)
    assert status == "ok", (name, status)
    return addresses[0]


def _log_has(info, text, since):
    with open(os.path.join(info.dir, L.LOG_FILE)) as fh:
        return any(text in line for line in fh.read()[since:].splitlines())


def _log_size(info):
    return os.path.getsize(os.path.join(info.dir, L.LOG_FILE))


class Writes:
    """PyMySQL inserting through the cluster address, reconnecting after each error: what it got acked."""

    def __init__(self, info, address):
        self.info, self.address = info, address
        self.acked, self.errors = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        conn, value = None, 0
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = _connect(self.info, self.address, timeout=1)
                value += 1
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO %s (value) VALUES (%%s)" % L.TABLE, (700000 + value,))
                    self.acked.append(cur.lastrowid)
            except Exception as exc:
                self.errors.append(exc.args[0] if exc.args else type(exc).__name__)
                conn = None
                time.sleep(0.05)
            time.sleep(0.01)


def _root_rows(info, spec_name, ids):
    from fiswatch.lab.mariadb import sql

    layout = L.Layout.from_dict(_state(info)["layout"])
    rows = sql(layout.server_socket(L.spec_by_name(spec_name)),
               ["SELECT id FROM %s.%s WHERE id IN (%s)" % (L.DATABASE, L.TABLE, ",".join(str(i) for i in ids))])
    return {r[0] for r in rows}


def _state(info):
    from fiswatch.lab.control import request

    return request(os.path.join(info.dir, L.CONTROL_SOCKET), "state")


def _lab_cli(info, *args):
    return subprocess.run([sys.executable, "-m", "fiswatch", "lab", args[0], "--dir", info.dir] + list(args[1:]),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_alter_system_crash_from_the_mariadb_client_restarts_the_writer_in_place(lab):
    writer = _writer(lab)
    cluster = L.ENDPOINT_NAMES["aurora"]
    before = _address_of(lab, cluster)
    conn = _connect(lab, before)
    server_id = _one(conn, "SELECT @@server_id")[0]
    conn.close()
    writes = Writes(lab, before)
    writes.thread.start()
    wait_for(lambda: len(writes.acked) >= 20, timeout=30, message="writes before the crash")
    since = _log_size(lab)
    client = shutil.which("mariadb") or shutil.which("mysql")
    env = dict(os.environ, MYSQL_PWD=lab.endpoint("aurora").password.reveal())  # never on argv
    done = subprocess.run([client, "--no-defaults", "--skip-reconnect", "-h", before, "-P", str(writer.port),
                           "-u", lab.endpoint("aurora").user, L.DATABASE, "-e", "ALTER SYSTEM CRASH INSTANCE;"],
                          capture_output=True, text=True, timeout=60, env=env)
    # the issuing session lost its connection: 2013, or 2026 "reset by peer" over TLS (the client's default)
    assert done.returncode != 0 and ("2013" in done.stderr or "reset by peer" in done.stderr), done.stderr
    wait_for(lambda: _log_has(lab, "crash aurora: done", since), timeout=60, message="the crash's done step")
    acked_at_crash_end = len(writes.acked)
    wait_for(lambda: len(writes.acked) >= acked_at_crash_end + 20, timeout=30, message="writes after the crash")
    writes.stop.set()
    writes.thread.join(10)
    assert _log_has(lab, "killed (SIGKILL)", since)
    assert _address_of(lab, cluster) == before  # no DNS change
    assert _writer(lab).name == writer.name  # no failover
    conn = _connect(lab, before)
    assert _one(conn, "SELECT @@server_id")[0] == server_id  # the same server
    assert int(_one(conn, "SHOW GLOBAL STATUS LIKE 'Uptime'")[1]) < 120  # ... restarted
    assert _one(conn, "SELECT @@read_only")[0] == 0
    conn.close()
    assert writes.errors, "the crash never reached the writing client"
    missing = set(writes.acked) - _root_rows(lab, writer.name, writes.acked)
    assert not missing, "acknowledged writes lost: %s" % sorted(missing)[:10]


def test_alter_system_answers_as_the_services_do(lab):
    import pymysql

    conn = _connect(lab, _writer(lab).address)
    with pytest.raises(pymysql.err.OperationalError) as simulate:
        _one(conn, "ALTER SYSTEM SIMULATE 50 PERCENT DISK HICCUPS FOR INTERVAL 5 SECOND")
    assert simulate.value.args[0] == 1105 and "not supported by the fiswatch lab" in simulate.value.args[1]
    with pytest.raises(pymysql.err.ProgrammingError) as bad:
        _one(conn, "ALTER SYSTEM CRASH EVERYTHING")
    assert bad.value.args[0] == 1064
    assert _one(conn, "SELECT 1")[0] == 1  # the session goes on
    conn.close()
    rds = _connect(lab, _address_of(lab, L.ENDPOINT_NAMES["rds"]), endpoint="rds")
    with pytest.raises(pymysql.err.ProgrammingError) as parse:
        _one(rds, "ALTER SYSTEM CRASH")  # RDS MySQL has no ALTER SYSTEM: the server's own parse error
    assert parse.value.args[0] == 1064
    assert _one(rds, "SELECT 1")[0] == 1
    rds.close()


def _refused(address, port):
    sock = socket.socket()
    sock.settimeout(2)
    try:
        sock.connect((address, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        sock.close()


def test_reboot_refuses_connects_and_the_reader_keeps_serving(lab):
    from fiswatch.lab.crash import run_reboot

    writer = _writer(lab)
    reader = next(i for i in lab.instances if i.cluster == "aurora" and i.name != writer.name)
    idle = _connect(lab, writer.address)
    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(run_reboot(lab.dir, writer.name, down_for=4.0)),
                           daemon=True)
    job.start()
    wait_for(lambda: _refused(writer.address, writer.port), timeout=30, message="connects refused")
    r = _connect(lab, reader.address)
    assert _one(r, "SELECT COUNT(*) FROM %s" % L.TABLE)[0] >= 0  # the reader serves during the reboot
    r.close()
    job.join(60)
    assert outcome.get("outage_end", 0) - outcome.get("outage_start", 0) >= 4.0
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as lost:  # its session was closed by the reboot
        _one(idle, "SELECT 1")
    assert lost.value.args[0] in (2006, 2013)
    conn = _connect(lab, writer.address)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO %s (value) VALUES (1)" % L.TABLE)  # the writer writes again
    conn.close()
    assert _writer(lab).name == writer.name


def test_lab_status_shows_a_reboot_in_progress_and_not_once_it_is_done(lab):
    import json

    from fiswatch.lab.crash import run_reboot

    reader = _reader_name(lab)
    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(run_reboot(lab.dir, reader, down_for=5.0)), daemon=True)
    job.start()

    def in_progress():
        done = _lab_cli(lab, "status", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["outage_in_progress"]

    shown = wait_for(in_progress, timeout=30, message="lab status --json showing the reboot")
    assert (shown["kind"], shown["instance"], shown["cluster"]) == ("reboot", reader, "aurora")
    assert abs(shown["since"] - time.time()) < 60
    line = "outage       reboot of %s (aurora) running since" % reader
    wait_for(lambda: line in _lab_cli(lab, "status").stdout, timeout=30, message="lab status saying so")
    job.join(60)
    assert outcome.get("outage_end")
    assert in_progress() is None
    assert "running since" not in _lab_cli(lab, "status").stdout  # (the shared lab's earlier outages show as "outage Ns")


def test_bad_input_gets_one_line_and_exit_2(lab):
    from fiswatch.lab.crash import take_lock

    cases = [("crash", "mysql"), ("crash", "aurora", "--kind", "everything"), ("crash", "aurora", "--down", "-1"),
             ("crash", "aurora", "--down", "soon"), ("reboot", "no-such-instance"),
             ("reboot", _reader_name(lab), "--failover")]
    for args in cases:
        done = _lab_cli(lab, *args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (args, done.stderr)
    fd = take_lock(lab.dir)  # a failover (or crash, reboot) is running
    try:
        for args in (("crash", "aurora"), ("reboot", _writer(lab).name)):
            done = _lab_cli(lab, *args)
            assert done.returncode == 2 and "already runs" in done.stderr, done.stderr
            assert len(done.stderr.strip().splitlines()) == 1
        import pymysql

        conn = _connect(lab, _writer(lab).address)  # and from SQL: a clear error, the session lives
        with pytest.raises(pymysql.err.OperationalError) as busy:
            _one(conn, "ALTER SYSTEM CRASH")
        assert busy.value.args[0] == 1105 and "already runs" in busy.value.args[1]
        assert _one(conn, "SELECT 1")[0] == 1
        conn.close()
    finally:
        os.close(fd)
    state = _state(lab)
    assert all(i["running"] and i["proxy_mode"] == "pass" for i in state["instances"])  # the lab is as it was


def _reader_name(info):
    writer = _writer(info)
    return next(i.name for i in info.instances if i.cluster == "aurora" and i.name != writer.name)


def test_crash_cli_dispatcher_keeps_the_engine(lab):
    writer = _writer(lab)
    conn = _connect(lab, writer.address)
    uptime = int(_one(conn, "SHOW GLOBAL STATUS LIKE 'Uptime'")[1])
    done = _lab_cli(lab, "crash", "aurora", "--kind", "dispatcher", "--down", "1", "--json")
    assert done.returncode == 0, done.stderr
    import json

    steps = [json.loads(line) for line in done.stdout.splitlines()]
    assert [s["step"] for s in steps] == ["start", "crash", "done"]
    assert all(s["event"] == "lab" and s["outage"] == "crash" for s in steps)
    assert steps[0]["outage_start"] < steps[-1]["outage_end"]
    import pymysql

    with pytest.raises(pymysql.err.OperationalError):
        _one(conn, "SELECT 1")  # reset
    conn = _connect(lab, writer.address)
    assert int(_one(conn, "SHOW GLOBAL STATUS LIKE 'Uptime'")[1]) >= uptime  # not restarted
    conn.close()


def test_lab_exec_schedules_a_crash_like_a_failover(lab, tmp_path):
    from test_lab_gate import WRITER, _gate, _junit

    bad = _gate(str(tmp_path / "no-lab"), tmp_path, "--crash", "aurora", "--", "true", timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--crash aurora: say ENDPOINT@SECONDS" in bad.stderr
    (tmp_path / "writer.py").write_text(WRITER)
    junit = tmp_path / "gate.xml"
    result = _gate(lab.dir, tmp_path, "--crash", "aurora@6", "--expect", "max-gap=30", "--expect", "lost=0",
                   "--expect", "recovered", "--junit", str(junit), "--", sys.executable, "writer.py", "17")
    assert result.returncode == 0, result.stderr
    cases, _ = _junit(junit)
    assert cases == {"crash aurora@6": True, "max-gap=30": True, "lost=0": True, "recovered": True}
    assert "lost writes: 0 of" in result.stderr


def test_the_crash_benchmark_measures_each_clients_gap(lab):
    from fiswatch.bench.crash_gap import crash_figure
    from fiswatch.bench.recovery_figure import probe_client

    fig = crash_figure(lab.dir, lab, repeats=1, down_for=1.0, clients=[probe_client("pymysql", "PyMySQL probe")])
    values = {m.name: m.value for m in fig.metrics}
    assert fig.error is None and len(fig.details["crashes"]) == 1
    outage = fig.details["crashes"][0]["outage_s"]
    assert outage >= 1.0
    for name in ("workshop loop", "PyMySQL probe"):
        gap = values["crash: %s gap" % name]
        # no write while connects are refused (at least most of the 1 s down), and back soon after
        assert gap is not None and 0.5 <= gap < outage + 15, (name, gap, outage)


def test_a_crash_stopped_midway_brings_the_instance_back(lab, tmp_path):
    import signal

    out = tmp_path / "crash.out"
    with open(str(out), "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "fiswatch", "lab", "crash", "rds", "--dir", lab.dir,
                                 "--down", "60"], stdout=fh, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        wait_for(lambda: "killed (SIGKILL)" in out.read_text(), timeout=60, message="the crash step")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "stopped midway (interrupted)" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    state = _state(lab)
    assert all(i["running"] and i["proxy_mode"] == "pass" for i in state["instances"])
    conn = _connect(lab, _address_of(lab, L.ENDPOINT_NAMES["rds"]), endpoint="rds")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO %s (value) VALUES (2)" % L.TABLE)  # the primary writes again
    conn.close()


def test_the_report_names_a_crash_as_a_crash():
    from test_report import make_run

    from fiswatch.report.build import build_report
    from fiswatch.report.render_json import report_as_dict
    from fiswatch.report.render_text import render_text

    events = [dict(ev, outage="crash") if ev.get("event") == "lab" else ev for ev in make_run()]
    report = build_report(events)
    (outage,) = report.failovers
    assert outage.kind == "crash"
    text = render_text(report)
    assert "Lab crash aurora: outage t+10.0..t+17.0" in text and "Lab failover" not in text
    assert report_as_dict(report)["failovers"][0]["kind"] == "crash"
    assert build_report(make_run()).failovers[0].kind == "failover"


def test_the_demo_key_c_crashes_aurora_and_a_second_c_is_refused(lab):
    said, events = press_twice(lab.dir, "c", "crash aurora", timeout=120)
    assert said == ""
    steps = [(e.get("step"), e.get("outage")) for e in events if e.event == "lab"]
    assert steps == [("start", "crash"), ("crash", "crash"), ("done", "crash")]
